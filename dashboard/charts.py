"""What the charts draw, as JSON-ready data with translated labels."""

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from leads.models import Temperature

from .selectors import Results


def chart_data(results: Results, *, weekly: str = "level") -> dict:
    """Funnel bars, weekly stacks (by current level, or by how far the
    week's leads got with `weekly="funnel"`) and temperatures."""
    steps = results.funnel.steps()
    labels = [date_format(week.start, "SHORT_DATE_FORMAT") for week in results.weeks]
    if weekly == "level":
        series = [
            ("iql", _("Now IQL"), "at_iql"),
            ("mql", _("Now MQL"), "at_mql"),
            ("sql", _("Now SQL"), "at_sql"),
        ]
    else:
        series = [
            ("iql", _("New leads"), "leads"),
            ("mql", _("Reached MQL"), "reached_mql"),
            ("sql", _("Reached SQL"), "reached_sql"),
            ("won", _("Won"), "won"),
        ]
    return {
        "funnel": {
            "title": _("Leads"),
            "keys": [step["key"] for step in steps],
            "labels": [str(step["label"]) for step in steps],
            "counts": [step["count"] for step in steps],
        },
        "weekly": {
            # Levels now partition the week's leads; reached levels nest.
            "stacked": weekly == "level",
            "labels": labels,
            "series": [
                {
                    "key": key,
                    "label": label,
                    "counts": [getattr(week, name) for week in results.weeks],
                }
                for key, label, name in series
            ],
        },
        "temperature": {
            "keys": list(Temperature.values),
            "labels": [str(label) for label in Temperature.labels],
            "counts": [results.temperature[value] for value in Temperature.values],
        },
    }
