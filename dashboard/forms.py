from datetime import timedelta

from django import forms
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign
from leads.services import EARLIEST_INTERACTION

from .selectors import FIRST_TOUCH, LAST_TOUCH, Filters

PERIODS = {
    "30d": 30,
    "90d": 90,
    "365d": 365,
}
DEFAULT_PERIOD = "90d"
LONGEST_PERIOD_DAYS = 3 * 366


class FilterForm(forms.Form):
    """The dashboard's period, source, campaign and attribution, from GET."""

    period = forms.ChoiceField(
        label=_("Period"),
        required=False,
        initial=DEFAULT_PERIOD,
        choices=[
            ("30d", _("Last 30 days")),
            ("90d", _("Last 90 days")),
            ("365d", _("Last 12 months")),
            ("custom", _("Custom")),
        ],
    )
    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    source = forms.ChoiceField(label=_("Source"), required=False)
    campaign = forms.ModelChoiceField(
        label=_("Campaign"),
        required=False,
        queryset=Campaign.objects.order_by("name"),
        empty_label=_("All campaigns"),
    )
    attribution = forms.ChoiceField(
        label=_("Attribution"),
        required=False,
        choices=[
            (FIRST_TOUCH, _("First touch")),
            (LAST_TOUCH, _("Last touch")),
        ],
    )

    def __init__(self, *args, sources: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [
            ("", _("All sources")),
            *((source, source) for source in sources),
        ]

    def clean(self):
        data = super().clean()
        if data.get("period") != "custom":
            return data
        start, end = data.get("start"), data.get("end")
        if not start or not end:
            raise forms.ValidationError(_("A custom period needs both dates."))
        if end < start:
            raise forms.ValidationError(_("The period ends before it starts."))
        if (end - start).days > LONGEST_PERIOD_DAYS:
            raise forms.ValidationError(_("Choose a period of at most three years."))
        # Leads hold no time before EARLIEST_INTERACTION, and a period at the
        # end of the calendar would overflow the day after its last day.
        first = EARLIEST_INTERACTION.date()
        last = timezone.localdate() + timedelta(days=366)
        if start < first or end > last:
            raise forms.ValidationError(
                _("Choose dates from %(first)s to %(last)s."),
                params={
                    "first": formats.date_format(first, "SHORT_DATE_FORMAT"),
                    "last": formats.date_format(last, "SHORT_DATE_FORMAT"),
                },
            )
        return data

    def filters(self) -> Filters:
        """The filters asked for, or the default period when the form is
        invalid or empty."""
        data = self.cleaned_data if self.is_valid() else {}
        period = data.get("period") or DEFAULT_PERIOD
        if period == "custom":
            start, end = data["start"], data["end"]
        else:
            end = timezone.localdate()
            start = end - timedelta(days=PERIODS[period] - 1)
        return Filters(
            start=start,
            end=end,
            source=data.get("source") or "",
            campaign=data.get("campaign"),
            attribution=data.get("attribution") or FIRST_TOUCH,
        )
