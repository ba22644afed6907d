from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def percent(rate: float | None) -> str:
    """A rate as a percentage with one decimal, or a dash when undefined."""
    if rate is None:
        return "–"
    return f"{_rounded(rate * 100, 1)} %"


@register.filter
def hours(value: float | None) -> str:
    """Hours as "45 min", "3.5 h" or "2.1 days"; a dash when unknown."""
    if value is None:
        return "–"
    if value < 1:
        return _("%(minutes)s min") % {"minutes": _rounded(value * 60, 0)}
    if value < 48:
        return _("%(hours)s h") % {"hours": _rounded(value, 1)}
    return _("%(days)s days") % {"days": _rounded(value / 24, 1)}


def _rounded(value: float, places: int) -> str:
    # number_format cuts the digits past `places` off: 46.67 would read 46.6.
    return number_format(round(value, places), places)
