from datetime import UTC, datetime, timedelta

import pytest

from leads.models import Interaction, Lead, LevelChange
from leads.services import InteractionData, LeadData, lead_ingest
from scoring import engine, services
from scoring.rules import DEFAULT_RULES, active_rules
from scoring.services import (
    rescore_one,
    score_recompute,
    score_recompute_many,
    score_sweep_stale,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def activity(kind: str, quantity: int, days_ago: float = 0) -> list[tuple]:
    return [(kind, quantity, NOW - timedelta(days=days_ago))]


def run(events, profile=None, level="iql"):
    facts = engine.aggregate(events, now=NOW, rules=DEFAULT_RULES)
    return engine.score(
        profile=profile or {},
        activity=facts,
        level=level,
        rules=DEFAULT_RULES,
        today=NOW.date(),
    )


def test_repeats_of_one_kind_are_capped():
    once = run(activity("form_submit", 1))
    thirty = run(activity("form_submit", 30))

    assert once.engagement == 10
    assert thirty.engagement == 20  # the cap


def test_old_activity_fades_with_the_half_life():
    fresh = run(activity("demo_request", 1, days_ago=0))
    half = run(activity("demo_request", 1, days_ago=DEFAULT_RULES.half_life_days))

    assert fresh.engagement == 40
    assert half.engagement == 20


def test_negative_kinds_take_points_away():
    result = run(activity("form_submit", 1) + activity("unsubscribe", 1))

    assert result.engagement == 10 - 20


def test_fit_counts_filled_profile_fields():
    result = run([], profile={"email": "a@b.vn", "company": "VinaTech", "city": ""})

    assert result.fit == 20
    assert {line.rule for line in result.breakdown} == {
        "profile:email",
        "profile:company",
    }


def test_score_and_fit_over_the_thresholds_make_an_mql():
    profile = {"email": "a@b.vn", "phone": "+84912345678", "company": "X"}
    result = run(activity("demo_request", 1), profile=profile)

    assert result.total == 70
    assert (result.level, result.level_rule) == ("mql", "mql_threshold")


def test_engagement_without_fit_stays_iql():
    result = run(activity("demo_request", 1) + activity("event_attendance", 2))

    assert result.total >= DEFAULT_RULES.mql_total
    assert result.level == "iql"


def test_levels_never_move_backwards_automatically():
    result = run([], level="mql")

    assert result.level == "mql"
    assert result.level_rule == ""


def test_temperature_follows_recent_activity_only():
    recent = run(activity("demo_request", 1, days_ago=1))
    month_old = run(activity("demo_request", 1, days_ago=60))
    nothing = run([])

    assert recent.temperature == "hot"
    assert month_old.temperature == "cold"
    assert nothing.temperature == "cold"


def test_the_breakdown_adds_up_to_the_total():
    profile = {"email": "a@b.vn", "job_title": "Giám đốc"}
    result = run(
        activity("page_visit", 4) + activity("email_click", 2, days_ago=10),
        profile=profile,
    )

    assert sum(line.points for line in result.breakdown) == result.total


@pytest.mark.django_db
def test_recompute_reads_the_whole_log_and_is_idempotent():
    result = lead_ingest(
        data=LeadData(email="an@example.com", company="X", phone="0912345678"),
        interactions=[
            InteractionData(kind="demo_request", channel="web_form", occurred_at=NOW)
        ],
        announce=False,
    )

    first = score_recompute(lead_id=result.lead.pk, now=NOW)
    second = score_recompute(lead_id=result.lead.pk, now=NOW)

    assert first.score == second.score == 70
    assert second.level == "mql"
    assert not second.score_stale
    history = list(LevelChange.objects.filter(lead=result.lead).order_by("id"))
    assert [(h.from_level, h.to_level, h.rule) for h in history] == [
        ("", "iql", "contact_details_known"),
        ("iql", "mql", "mql_threshold"),
    ]


@pytest.mark.postgres
@pytest.mark.django_db
def test_one_recompute_takes_a_fixed_number_of_queries(django_assert_num_queries):
    lead = lead_ingest(
        data=LeadData(email="an@example.com"),
        interactions=[
            InteractionData(kind="page_visit", channel="web_form") for _ in range(30)
        ],
        announce=False,
    ).lead

    active_rules()  # rule sets are cached per version once loaded

    # Active version, savepoint, lock (it also tells that the lead has no
    # BANT facts), log, write, release.
    with django_assert_num_queries(6):
        rescore_one(lead_id=lead.pk)


@pytest.mark.postgres
@pytest.mark.django_db
def test_bulk_rescore_gives_the_same_scores_as_one_by_one(
    django_assert_num_queries, monkeypatch
):
    ids = []
    for n in range(12):
        ids.append(
            lead_ingest(
                data=LeadData(
                    email=f"lead{n}@example.com",
                    company="X" * (n % 2),
                    job_title="CTO" * (n % 3 == 0),
                ),
                interactions=[
                    InteractionData(
                        kind="email_click", channel="email", occurred_at=NOW
                    )
                    for _ in range(n)
                ]
                + [InteractionData(kind="demo_request", channel="web_form")] * (n > 8),
                announce=False,
            ).lead.pk
        )
    active_rules()
    # Large batches are copied into a scratch table, small ones written
    # inline: the bulk run here takes the first way, one by one the second.
    monkeypatch.setattr(services, "INLINE_ROWS", 0)

    # Active version, then per batch: savepoint, lock, log, scratch table,
    # write, release.
    with django_assert_num_queries(1 + 2 * 6):
        score_recompute_many(lead_ids=ids, batch_size=6, now=NOW)
    bulk = _scored()
    Lead.objects.update(score_stale=True, level="iql", mql_at=None)
    LevelChange.objects.all().delete()
    monkeypatch.undo()
    for lead_id in ids:
        score_recompute(lead_id=lead_id, now=NOW)
    single = _scored()

    assert bulk == single
    assert len({row[0] for row in bulk.values()}) > 3
    assert {row[1] for row in bulk.values()} == {"iql", "mql"}


def _scored() -> dict[int, tuple]:
    history = {
        change.lead_id: (change.from_level, change.to_level, change.rule)
        for change in LevelChange.objects.filter(to_level="mql")
    }
    return {
        lead.pk: (
            lead.score,
            lead.level,
            lead.score_breakdown,
            lead.mql_at is not None,
            history.get(lead.pk),
        )
        for lead in Lead.objects.all()
    }


@pytest.mark.django_db
def test_the_sweeper_rescores_leads_whose_task_never_ran():
    lead = lead_ingest(
        data=LeadData(email="an@example.com"),
        interactions=[InteractionData(kind="demo_request", channel="web_form")],
        announce=False,
    ).lead
    assert Lead.objects.get(pk=lead.pk).score_stale

    assert score_sweep_stale() == 1

    lead.refresh_from_db()
    assert not lead.score_stale
    assert lead.score == 50  # 40 engagement + 10 for the email
    assert Interaction.objects.count() == 1


def test_the_breakdown_says_when_activity_has_faded():
    fresh = run(activity("demo_request", 1))
    aged = run(activity("demo_request", 1, days_ago=DEFAULT_RULES.half_life_days))

    assert fresh.breakdown[0].detail == "1 × 40, cap 40"
    assert aged.breakdown[0].detail == "1 × 40, cap 40, faded from 40"
    assert aged.breakdown[0].points == 20


@pytest.mark.postgres
@pytest.mark.django_db
def test_labels_with_tabs_quotes_and_backslashes_survive_the_bulk_write(
    monkeypatch,
):
    label = 'Tải "bảng giá"\tC:\\docs\\giá.pdf\nmới'
    rules = engine.Rules(
        version=0,
        engagement=(
            engine.EngagementRule(
                key="eng:1", kind="document_download", points=10, label=label
            ),
        ),
        fit=(),
    )
    lead = lead_ingest(
        data=LeadData(email="an@example.com"),
        interactions=[InteractionData(kind="document_download", channel="web_form")],
        announce=False,
    ).lead
    monkeypatch.setattr(services, "INLINE_ROWS", 0)  # the COPY path

    services.rescore_batch([lead.pk], rules=rules, now=NOW)

    lead.refresh_from_db()
    assert lead.score_breakdown[0]["label"] == label
    assert lead.score == 10


def test_a_rule_sets_own_labels_read_as_codes_and_a_persons_do_not():
    from scoring.models import EngagementRule, FitRule

    def code(rule):
        return rule.code()

    assert code(EngagementRule(kind="page_visit")) == ("kind", "page_visit")
    assert code(EngagementRule(kind="document_download", subject="giá.pdf")) == (
        "kind",
        "document_download",
        "giá.pdf",
    )
    assert code(EngagementRule(kind="page_visit", label="Pricing")) == ()
    assert code(FitRule(field="job_title", operator="filled", points=5)) == (
        "fit",
        "job_title",
        "filled",
    )
    assert code(
        FitRule(field="industry", operator="one_of", values="IT\nBanking", points=5)
    ) == ("fit", "industry", "one_of", "IT, Banking")
    assert code(FitRule(field="job_title", operator="filled", label="Titled")) == ()


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_rescore_that_changes_nothing_leaves_the_row_alone():
    lead = lead_ingest(
        data=LeadData(email="an@example.com"),
        interactions=[InteractionData(kind="demo_request", channel="web_form")],
        announce=False,
    ).lead
    first = score_recompute(lead_id=lead.pk, now=NOW)

    again = score_recompute(lead_id=lead.pk, now=NOW + timedelta(seconds=5))
    later = score_recompute(lead_id=lead.pk, now=NOW + timedelta(days=30))

    assert again.scored_at == first.scored_at
    # A month on, the demo request has faded: the score changed, so it is
    # written.
    assert later.scored_at == NOW + timedelta(days=30)
    assert later.engagement_score < first.engagement_score
