from django import template
from django.template.defaultfilters import floatformat

from leads.models import BantCriterion
from leads.templatetags.leads_tags import score_rule_label
from scoring.models import JobStatus

register = template.Library()

_JOB_CLASSES = {
    JobStatus.QUEUED: "text-bg-secondary",
    JobStatus.RUNNING: "text-bg-primary",
    JobStatus.DONE: "text-bg-success",
    JobStatus.FAILED: "text-bg-danger",
}


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """A share (0.25) as a percentage ("25.0 %"); a dash when unknown."""
    if value is None:
        return "—"
    return f"{floatformat(value * 100, digits)} %"


@register.filter
def job_status_class(status: str) -> str:
    return _JOB_CLASSES.get(status, "text-bg-light")


@register.filter
def signed(value: float | None, digits: int = 3) -> str:
    """A change with its sign (+0.012, −0.030); a dash when unknown."""
    if value is None:
        return "—"
    text = floatformat(abs(value), digits)
    return f"+{text}" if value > 0 else (f"−{text}" if value < 0 else text)


@register.filter
def criterion_label(name: str) -> str:
    """A BANT criterion's name in words ("budget" -> "Budget")."""
    if name in BantCriterion.values:
        return str(BantCriterion(name).label)
    return name


@register.filter
def rule_label(rule) -> str:
    """A rule's description in the reader's language, as the lead page
    words its breakdown: a field by its name on the lead's form."""
    return score_rule_label({"label": rule.describe(), "code": rule.code()})
