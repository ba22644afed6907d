"""Segments: saved filters over leads, worked out whenever they are used.

A segment stores the filter's parameters, never a list of leads, so an
email sent next week reaches whoever matches next week.
"""

import math
import re

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from leads.models import Interaction, Lead, LeadStatus, Level, Temperature
from leads.selectors import lead_sources

from .models import Campaign, Segment

_CUSTOM_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")
CONSENT_CHOICES = [
    ("yes", _("Gave consent")),
    ("no", _("Refused or unsubscribed")),
    ("unknown", _("Unknown")),
]


class CustomConditionsField(forms.CharField):
    """Lines of `key = value`: each lead's custom data must hold them all."""

    widget = forms.Textarea(attrs={"rows": 2, "placeholder": "course = MBA"})

    def clean(self, value) -> list[tuple[str, str]]:
        text = super().clean(value) or ""
        conditions = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, wanted = (part.strip() for part in line.partition("="))
            if not sep or not _CUSTOM_KEY.match(key):
                raise ValidationError(
                    _("Line %(number)s: write key = value (letters, digits, _ or -)."),
                    params={"number": number},
                )
            conditions.append((key, wanted))
        return conditions


class CustomConditionsFilter(django_filters.Filter):
    field_class = CustomConditionsField

    def filter(self, qs, value):
        for key, wanted in value or ():
            qs = qs.filter(_custom_equals(key, wanted))
        return qs


def _custom_equals(key: str, wanted: str) -> Q:
    # Containment reads the key as a key, never as an ORM lookup
    # ("course__regex" is a key of that name, not a regular expression).
    # Imported custom data keeps numbers and booleans as JSON values, so
    # "5" must also find 5 and "true" find true.
    match = Q(custom__contains={key: wanted})
    lowered = wanted.lower()
    if lowered in {"true", "false"}:
        match |= Q(custom__contains={key: lowered == "true"})
    try:
        number = float(wanted)
    except ValueError:
        return match
    if not math.isfinite(number):
        return match  # NaN and infinity are not JSON numbers
    return match | Q(
        custom__contains={key: int(number) if number.is_integer() else number}
    )


class SegmentFilter(django_filters.FilterSet):
    level = django_filters.MultipleChoiceFilter(
        label=_("Level"), choices=Level.choices, widget=forms.CheckboxSelectMultiple
    )
    temperature = django_filters.MultipleChoiceFilter(
        label=_("Temperature"),
        choices=Temperature.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=LeadStatus.choices, empty_label=_("Any status")
    )
    score_min = django_filters.NumberFilter(
        label=_("Score from"), field_name="score", lookup_expr="gte"
    )
    score_max = django_filters.NumberFilter(
        label=_("Score up to"), field_name="score", lookup_expr="lte"
    )
    campaign = django_filters.ModelChoiceFilter(
        label=_("Touched by campaign"),
        queryset=Campaign.objects.order_by("name"),
        method="filter_campaign",
        empty_label=_("Any campaign"),
    )
    source = django_filters.ChoiceFilter(
        label=_("Source"), choices=[], empty_label=_("Any source")
    )
    consent = django_filters.ChoiceFilter(
        label=_("Email consent"),
        choices=CONSENT_CHOICES,
        method="filter_consent",
        empty_label=_("Any"),
    )
    custom = CustomConditionsFilter(
        label=_("Custom fields"),
        help_text=_("One condition per line: key = value."),
        required=False,
    )

    class Meta:
        model = Lead
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, **kwargs):
        queryset = Lead.objects.all() if queryset is None else queryset
        super().__init__(data, queryset=queryset, **kwargs)
        self.filters["source"].extra["choices"] = [
            (source, source) for source in lead_sources(Lead.objects.all())
        ]

    def filter_campaign(self, queryset, name, campaign):
        touched = Interaction.objects.filter(lead=OuterRef("pk"), campaign=campaign)
        return queryset.filter(
            Q(first_touch_campaign=campaign)
            | Q(last_touch_campaign=campaign)
            | Exists(touched)
        )

    def filter_consent(self, queryset, name, value):
        consent = {"yes": True, "no": False, "unknown": None}[value]
        if consent is None:
            return queryset.filter(email_consent__isnull=True)
        return queryset.filter(email_consent=consent)


def segment_filter_data(data) -> dict[str, object]:
    """The parameters worth saving from a bound filter form: no blanks."""
    form_fields = SegmentFilter.base_filters
    saved: dict[str, object] = {}
    for name in form_fields:
        values = data.getlist(name) if hasattr(data, "getlist") else data.get(name)
        if isinstance(values, list):
            values = [v for v in values if v not in ("", None)]
            if len(values) == 1 and name not in ("level", "temperature"):
                values = values[0]
        if values not in ("", None, []):
            saved[name] = values
    return saved


def filter_leads(filters: dict, queryset: QuerySet[Lead] | None = None) -> QuerySet:
    """The leads matching saved filters; ValidationError if they no longer
    make sense (a deleted campaign), rather than a silently wider match."""
    filterset = SegmentFilter(filters, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs


def segment_leads(segment: Segment, queryset: QuerySet[Lead] | None = None):
    return filter_leads(segment.filters, queryset)


def emailable(queryset: QuerySet[Lead]) -> QuerySet[Lead]:
    """Leads an email may be sent to: consent given, an address known and
    no hard bounce from it."""
    from .models import BounceKind, EmailRecipient

    hard_bounced = EmailRecipient.objects.filter(
        email=OuterRef("email"), bounce_kind=BounceKind.HARD
    )
    return (
        queryset.filter(email_consent=True)
        .exclude(email="")
        .exclude(Exists(hard_bounced))
    )


def segment_save(
    *, name: str, filters: dict, by, segment: Segment | None = None
) -> Segment:
    """Create or change a segment; ValidationError if the filters are bad."""
    filter_leads(filters)
    segment = segment or Segment(created_by=by)
    segment.name = name.strip()
    segment.filters = filters
    segment.full_clean()
    segment.save()
    return segment
