from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def percent(rate: float | None) -> str:
    """A rate as a percentage with one decimal, or a dash when undefined."""
    if rate is None:
        return "–"
    return f"{number_format(rate * 100, 1)} %"


@register.filter
def hours(value: float | None) -> str:
    """Hours as "45 min", "3.5 h" or "2.1 days"; a dash when unknown."""
    if value is None:
        return "–"
    if value < 1:
        return _("%(minutes)s min") % {"minutes": number_format(value * 60, 0)}
    if value < 48:
        return _("%(hours)s h") % {"hours": number_format(value, 1)}
    return _("%(days)s days") % {"days": number_format(value / 24, 1)}
