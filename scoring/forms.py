"""Forms of the draft editor: the rule set's thresholds and its two rule
tables. The models' clean() methods carry the validation."""

from django import forms
from django.forms import inlineformset_factory
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign

from .models import EngagementRule, FitRule, RuleSet

RULE_SET_FIELDS = (
    "name",
    "notes",
    "mql_total",
    "mql_min_fit",
    "sql_min_confirmed",
    "sql_requires_budget",
    "sql_requires_authority",
    "sql_requires_need",
    "sql_requires_timeline",
    "budget_min",
    "budget_currency",
    "authority_keywords",
    "timeline_max_days",
    "bant_stated_points",
    "bant_confirmed_points",
    "warm_at",
    "hot_at",
    "half_life_days",
    "temperature_half_life_days",
    "window_days",
)


class RuleSetForm(forms.ModelForm):
    class Meta:
        model = RuleSet
        fields = RULE_SET_FIELDS
        widgets = {
            "notes": forms.Textarea(attrs={"rows": 2}),
            "authority_keywords": forms.Textarea(attrs={"rows": 4}),
        }

    def clean_budget_currency(self) -> str:
        return self.cleaned_data["budget_currency"].strip().upper()


class EngagementRuleForm(forms.ModelForm):
    class Meta:
        model = EngagementRule
        fields = ("kind", "campaign", "subject", "points", "cap", "window_cap", "label")

    def __init__(self, *args, campaign_choices=None, **kwargs):
        super().__init__(*args, **kwargs)
        if campaign_choices is not None:
            # Every row offers the same campaigns: read them once for the
            # formset rather than once a row.
            self.fields["campaign"].choices = campaign_choices
        self.fields["campaign"].empty_label = _("Any campaign")


class FitRuleForm(forms.ModelForm):
    class Meta:
        model = FitRule
        fields = ("field", "operator", "values", "low", "high", "points", "label")
        widgets = {
            "field": forms.TextInput(attrs={"list": "fit-fields"}),
            "values": forms.Textarea(attrs={"rows": 1}),
        }


EngagementRuleFormSet = inlineformset_factory(
    RuleSet,
    EngagementRule,
    form=EngagementRuleForm,
    extra=2,
    can_delete=True,
)
FitRuleFormSet = inlineformset_factory(
    RuleSet,
    FitRule,
    form=FitRuleForm,
    extra=2,
    can_delete=True,
)


def campaign_choices() -> list[tuple[object, str]]:
    return [("", _("Any campaign"))] + [
        (campaign.pk, str(campaign)) for campaign in Campaign.objects.order_by("name")
    ]


def draft_forms(
    draft: RuleSet, data=None
) -> tuple[RuleSetForm, EngagementRuleFormSet, FitRuleFormSet]:
    """The editor's three forms, bound to `data` when it is given."""
    return (
        RuleSetForm(data, instance=draft),
        EngagementRuleFormSet(
            data,
            instance=draft,
            prefix="engagement",
            form_kwargs={"campaign_choices": campaign_choices()},
        ),
        FitRuleFormSet(data, instance=draft, prefix="fit"),
    )
