import re

from django import template
from django.core.exceptions import FieldDoesNotExist
from django.utils.formats import number_format
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from leads.models import (
    BantCriterion,
    InteractionKind,
    Lead,
    Level,
    Temperature,
    source_label,
)

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


register.filter("source_label", source_label)


# The words of scoring's FitOperator, under the same message ids: `leads`
# does not import scoring.
FIT_CONDITIONS = {
    "filled": gettext_lazy("is filled"),
    "equals": gettext_lazy("equals"),
    "one_of": gettext_lazy("is one of"),
    "contains": gettext_lazy("contains any of"),
    "range": gettext_lazy("is a number in range"),
    "free_mail": gettext_lazy("is a free-mail address"),
    "company_mail": gettext_lazy("is a company address"),
}


@register.filter
def score_rule_label(line) -> str:
    """A person's words for one line of a score breakdown, in the reader's
    language.

    Takes the line (a dict) or its rule code. A line whose label its rule
    set wrote comes with that rule's `code` (selectors.lead_score_lines):
    ("kind", kind[, subject]) or ("fit", field, operator[, values]), put in
    words here. A line without one shows its label as stored, such as a
    marketer's own label. Lines without either have built-in rule codes
    ("kind:demo_view", "profile:company", "bant:budget") put in words; any
    other code is shown as it is.
    """
    if isinstance(line, dict):
        words = _code_label(line.get("code"))
        if words:
            return words
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
        return _("Profile has %(field)s") % {"field": _field_label(name)}
    return rule


def _code_label(code) -> str:
    """A line's code in words; "" for one this page cannot read, whose
    stored label is shown instead."""
    if not isinstance(code, list | tuple) or not all(isinstance(c, str) for c in code):
        return ""
    head, *args = code or ("",)
    if head == "kind" and len(args) in (1, 2) and args[0] in InteractionKind.values:
        words = str(InteractionKind(args[0]).label)
        return f"{words}: {args[1]}" if len(args) == 2 else words
    if head == "fit" and len(args) in (2, 3) and args[1] in FIT_CONDITIONS:
        values = {"field": _field_label(args[0]), "condition": FIT_CONDITIONS[args[1]]}
        if len(args) == 3:
            values["values"] = args[2]
            words = _("%(field)s %(condition)s %(values)s") % values
        else:
            words = _("%(field)s %(condition)s") % values
        # A custom field keeps the marketer's spelling, even at the start.
        return words if args[0].startswith("custom.") else capfirst(words)
    return ""


def _field_label(name: str) -> str:
    """A lead field's name as the lead's form shows it; a custom field as
    the marketer named it."""
    try:
        return str(Lead._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


# The shape engine._detail writes, e.g. "3 × 2.5, cap 20, faded from 7".
_DETAIL = re.compile(
    r"(?P<count>\d+) × (?P<points>-?[\d.]+(?:e[+-]?\d+)?)"
    r"(?:, cap (?P<cap>[\d.]+(?:e[+-]?\d+)?))?"
    r"(?:, faded from (?P<fresh>-?\d+))?"
)
BANT_STATUSES = {
    "stated": gettext_lazy("Stated by the lead"),
    "confirmed": gettext_lazy("Confirmed by sales"),
}


@register.filter
def score_detail_label(line) -> str:
    """A breakdown line's detail in the reader's language.

    Scoring stores details in English, in the shapes the engine writes: how
    an engagement rule's points add up, or whether a BANT criterion was
    stated or confirmed. Anything else is shown as stored.
    """
    detail = str(line.get("detail") or "")
    part = line.get("part")
    if part == "bant" and detail in BANT_STATUSES:
        return str(BANT_STATUSES[detail])
    match = _DETAIL.fullmatch(detail) if part == "engagement" else None
    if match is None:
        return detail

    words = [f"{match['count']} × {_number(match['points'])}"]
    if match["cap"] is not None:
        words.append(_("cap %(points)s") % {"points": _number(match["cap"])})
    if match["fresh"] is not None:
        words.append(_("faded from %(points)s") % {"points": _number(match["fresh"])})
    return ", ".join(words)


def _number(text: str) -> str:
    """A number the engine wrote with Python's "g" format, as the reader
    writes numbers ("2.5" is "2,5" in Vietnamese)."""
    value = float(text)
    return number_format(int(value) if value.is_integer() else value)


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
