"""Forms and filters of the sales hand-off pages. They gather input; the
services in `leads.handoff` and `leads.assignment` decide."""

import django_filters
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .handoff import REJECT_REASONS, RejectOutcome
from .models import Level, ReasonCode, Temperature
from .selectors import breached_q, lead_search


def rep_name(user) -> str:
    return user.get_full_name() or user.get_username()


class RejectForm(forms.Form):
    reason_code = forms.ChoiceField(
        label=_("Reason"),
        choices=[("", _("Choose a reason"))]
        + [(code.value, code.label) for code in REJECT_REASONS],
    )
    outcome = forms.ChoiceField(
        label=_("Then"),
        choices=RejectOutcome.choices,
        initial=RejectOutcome.RECYCLE,
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea({"rows": 2}),
        help_text=_("Needed when the reason is Other."),
    )

    def clean(self):
        data = super().clean()
        if (
            data.get("reason_code") == ReasonCode.OTHER
            and not data.get("note", "").strip()
        ):
            self.add_error("note", _("Say why, when the reason is Other."))
        return data


class ReassignForm(forms.Form):
    rep = forms.ChoiceField(label=_("Give to"))
    leads = forms.TypedMultipleChoiceField(
        coerce=int, required=True, error_messages={"required": _("Tick some leads.")}
    )

    def __init__(self, *args, reps, lead_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rep"].choices = [("", _("Choose a rep"))] + [
            (
                member.user_id,
                f"{rep_name(member.user)} · {member.team}",
            )
            for member in reps
        ]
        self.fields["leads"].choices = [(pk, pk) for pk in lead_ids]


class SlaState:
    ON_TIME = "on_time"
    BREACHED = "breached"
    CHOICES = [(ON_TIME, _("On time")), (BREACHED, _("Breached"))]


class QueueFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("Search"), method="filter_search")
    level = django_filters.ChoiceFilter(
        label=_("Level"),
        choices=[
            (Level.MQL.value, Level.MQL.label),
            (Level.SQL.value, Level.SQL.label),
        ],
        empty_label=_("MQL and SQL"),
    )
    temperature = django_filters.ChoiceFilter(
        label=_("Temperature"),
        choices=Temperature.choices,
        empty_label=_("All temperatures"),
    )
    sla = django_filters.ChoiceFilter(
        label=_("SLA"),
        choices=SlaState.CHOICES,
        empty_label=_("Any SLA state"),
        method="filter_sla",
    )
    owner = django_filters.ChoiceFilter(
        label=_("Rep"), choices=[], empty_label=_("All reps"), field_name="owner_id"
    )

    def __init__(self, *args, reps=None, **kwargs):
        super().__init__(*args, **kwargs)
        if reps is None:
            del self.filters["owner"]
        else:
            self.filters["owner"].extra["choices"] = [
                (member.user_id, rep_name(member.user)) for member in reps
            ]

    def filter_search(self, queryset, name, value):
        return lead_search(queryset, value)

    def filter_sla(self, queryset, name, value):
        breached = breached_q(timezone.now())
        if value == SlaState.BREACHED:
            return queryset.filter(breached)
        return queryset.exclude(breached)
