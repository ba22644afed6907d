"""How well a score separates leads that converted from those that did not."""

from collections.abc import Sequence


def roc_auc(scores: Sequence[float], outcomes: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance that a random converted lead
    scores above a random lead that did not (ties count half).

    None when either class is empty.
    """
    pairs = sorted(zip(scores, outcomes, strict=True), key=lambda p: p[0])
    positives = sum(1 for _, won in pairs if won)
    negatives = len(pairs) - positives
    if not positives or not negatives:
        return None

    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        # Tied scores share the mean of the ranks they span (1-based).
        mean_rank = (i + 1 + j) / 2
        rank_sum += mean_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j

    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
