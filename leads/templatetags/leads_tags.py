from django import template
from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from leads.models import BantCriterion, InteractionKind, Lead, Level, Temperature

register = template.Library()

_TEMPERATURE_CLASSES = {
    Temperature.COLD: "text-bg-info",
    Temperature.WARM: "text-bg-warning",
    Temperature.HOT: "text-bg-danger",
}
_LEVEL_CLASSES = {
    Level.IQL: "text-bg-secondary",
    Level.MQL: "text-bg-primary",
    Level.SQL: "text-bg-success",
}


@register.filter
def temperature_class(value: str) -> str:
    return _TEMPERATURE_CLASSES.get(value, "text-bg-light")


@register.filter
def level_class(value: str) -> str:
    return _LEVEL_CLASSES.get(value, "text-bg-light")


@register.filter
def score_rule_label(line) -> str:
    """A person's words for one line of a score breakdown.

    Takes the line (a dict) or its rule code. A line that carries the
    rule's own label shows it; otherwise the built-in codes ("kind:demo_view",
    "profile:company", "bant:budget") are put in words and any other code is
    shown as it is.
    """
    if isinstance(line, dict):
        if line.get("label"):
            return str(line["label"])
        line = line.get("rule", "")
    rule = str(line)
    prefix, _sep, name = rule.partition(":")
    if prefix == "kind" and name in InteractionKind.values:
        return str(InteractionKind(name).label)
    if prefix == "bant" and name in BantCriterion.values:
        return str(BantCriterion(name).label)
    if prefix == "profile":
        try:
            field = str(Lead._meta.get_field(name).verbose_name)
        except FieldDoesNotExist:
            field = name
        return _("Profile has %(field)s") % {"field": field}
    return rule


@register.filter
def score_part_label(part: str) -> str:
    return {"engagement": _("Engagement"), "fit": _("Fit"), "bant": _("BANT")}.get(
        part, part
    )


LEVEL_RULES = {
    "contact_details_known": gettext_lazy("contact details known"),
    "mql_threshold": gettext_lazy("score and fit reached the MQL thresholds"),
    "sql_bant_confirmed": gettext_lazy("BANT confirmed by sales"),
}


@register.filter
def level_rule_label(rule: str) -> str:
    """The automatic rule behind a level change, in a person's words."""
    return LEVEL_RULES.get(rule, rule)
