"""Forms of the lead page: BANT confirmation and stage actions.

They only gather input; the services in `leads.services` check permissions
and the rules of each action.
"""

from django import forms
from django.utils.translation import gettext_lazy as _

from .amounts import read_amount
from .models import Bant, BantCriterion, Level, ReasonCode

REASON_CHOICES = [("", _("Choose a reason")), *ReasonCode.choices]


class AmountField(forms.DecimalField):
    """An amount typed as people write it ("120.000.000", "120,000,000.00",
    "120 triệu", "1,5 tỷ"), read by the same parser as a budget stated on a
    public form; digits and decimal places are then checked as usual."""

    widget = forms.TextInput(attrs={"inputmode": "decimal"})

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_digits", 18)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)

    def to_python(self, value):
        if not isinstance(value, str):
            return super().to_python(value)
        if value.strip() in self.empty_values:
            return None
        amount = read_amount(value)
        if amount is None:
            raise forms.ValidationError(
                _("Enter an amount such as 120.000.000 or 120 triệu."),
                code="invalid",
            )
        return amount


class BantConfirmForm(forms.Form):
    """What sales confirmed of one criterion; only its own fields are asked."""

    amount = AmountField(label=_("Budget amount"))
    currency = forms.CharField(
        label=_("Currency"), min_length=3, max_length=3, initial="VND"
    )
    authority = forms.CharField(
        label=_("Who decides"),
        max_length=500,
        help_text=_("The decision maker's name or role."),
    )
    need = forms.CharField(
        label=_("What they need"), max_length=500, widget=forms.Textarea({"rows": 2})
    )
    date = forms.DateField(
        label=_("Expected purchase date"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    FIELDS = {
        BantCriterion.BUDGET: ("amount", "currency"),
        BantCriterion.AUTHORITY: ("authority",),
        BantCriterion.NEED: ("need",),
        BantCriterion.TIMELINE: ("date",),
    }

    def __init__(self, *args, criterion: str, known: Bant | None = None, **kwargs):
        kwargs.setdefault("prefix", f"bant-{criterion}")
        if known is not None and "initial" not in kwargs:
            # Sales usually confirms what the lead stated: start from it.
            kwargs["initial"] = {
                "amount": known.amount,
                "currency": known.currency or "VND",
                "authority": known.text,
                "need": known.text,
                "date": known.date,
            }
        super().__init__(*args, **kwargs)
        self.criterion = criterion
        for name in list(self.fields):
            if name not in self.FIELDS[criterion]:
                del self.fields[name]

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if not currency.isalpha():
            raise forms.ValidationError(_("Use a three-letter code such as VND."))
        return currency

    def service_kwargs(self) -> dict[str, object]:
        """The keyword arguments of `lead_bant_set` for this criterion."""
        data = self.cleaned_data
        return {
            "amount": data.get("amount"),
            "currency": data.get("currency", ""),
            "text": data.get("authority") or data.get("need") or "",
            "date": data.get("date"),
        }


class StageReasonForm(forms.Form):
    """Recycle to nurture, or disqualify: always with a coded reason."""

    reason_code = forms.ChoiceField(label=_("Reason"), choices=REASON_CHOICES)
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea({"rows": 2}),
        help_text=_("Needed when the reason is Other."),
    )


class ReopenForm(forms.Form):
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea({"rows": 2}),
    )


class MoveForm(forms.Form):
    to_level = forms.ChoiceField(label=_("Move to"), choices=Level.choices)
    reason_code = forms.ChoiceField(
        label=_("Reason"),
        choices=REASON_CHOICES,
        required=False,
        help_text=_("Needed when the lead moves back a level."),
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea({"rows": 2}),
    )
