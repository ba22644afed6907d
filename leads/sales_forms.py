"""Forms of sales' work on a lead: activities, conversion, pipeline moves.

They gather input only; `leads.activities` and `leads.opportunities` check
permissions and the rules.
"""

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .activities import ActivityInput
from .forms import REASON_CHOICES, AmountField
from .models import ActivityKind, OpportunityStage
from .opportunities import OPEN_STAGES, OpportunityInput

_DATETIME = {"type": "datetime-local"}
_DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


def _datetime_field(label, **kwargs) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        widget=forms.DateTimeInput(attrs=_DATETIME, format=_DATETIME_FORMAT),
        input_formats=[_DATETIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        **kwargs,
    )


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(label=_("What"), choices=ActivityKind.choices)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    body = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea({"rows": 2})
    )
    occurred_at = _datetime_field(_("When"), required=False, help_text=_("Blank: now."))
    due_at = _datetime_field(_("Due"), required=False, help_text=_("Tasks only."))
    remind_at = _datetime_field(
        _("Remind me at"),
        required=False,
        help_text=_("Tasks only. Blank: when the task is due."),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "activity")
        super().__init__(*args, **kwargs)

    def to_input(self) -> ActivityInput:
        data = self.cleaned_data
        return ActivityInput(
            kind=data["kind"],
            subject=data["subject"],
            body=data.get("body") or "",
            occurred_at=data.get("occurred_at"),
            due_at=data.get("due_at"),
            remind_at=data.get("remind_at"),
        )


class OpportunityForm(forms.Form):
    """A deal's own details, as converted or corrected later."""

    name = forms.CharField(label=_("Opportunity name"), max_length=200)
    amount = AmountField(label=_("Amount"))
    currency = forms.CharField(
        label=_("Currency"), min_length=3, max_length=3, initial="VND"
    )
    expected_close_on = forms.DateField(
        label=_("Expected close"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def to_input(self) -> OpportunityInput:
        data = self.cleaned_data
        return OpportunityInput(
            name=data["name"],
            amount=data["amount"],
            currency=data["currency"],
            expected_close_on=data["expected_close_on"],
            stage=data.get("stage", OpportunityStage.QUALIFICATION),
        )


class ConvertForm(OpportunityForm):
    stage = forms.ChoiceField(
        label=_("Stage"),
        choices=[(s.value, s.label) for s in OPEN_STAGES],
        initial=OpportunityStage.QUALIFICATION,
    )

    def clean_expected_close_on(self):
        value = self.cleaned_data["expected_close_on"]
        if value < timezone.localdate():
            raise forms.ValidationError(_("The expected close is in the past."))
        return value


class StageMoveForm(forms.Form):
    to_stage = forms.ChoiceField(label=_("Move to"), choices=OpportunityStage.choices)
    reason_code = forms.ChoiceField(
        label=_("Lost because"),
        choices=REASON_CHOICES,
        required=False,
        help_text=_("Needed when the deal is lost."),
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea({"rows": 2}),
    )
