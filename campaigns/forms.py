from urllib.parse import urlsplit

from django import forms
from django.contrib.auth import get_user_model
from django.forms import inlineformset_factory
from django.utils.translation import gettext_lazy as _

from leads.services import UTM_KEYS

from .models import LEAD_FIELDS, Campaign, FormField, WebForm
from .spam import HONEYPOT_FIELD, TOKEN_FIELD

# Names a builder may not give a field: they steer the post itself.
RESERVED_NAMES = {HONEYPOT_FIELD, TOKEN_FIELD, "csrfmiddlewaretoken", "_next"}


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name",
            "kind",
            "utm_campaign",
            "starts_on",
            "ends_on",
            "budget",
            "currency",
            "owner",
        ]
        widgets = {"starts_on": DateInput(), "ends_on": DateInput()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = get_user_model().objects.filter(is_active=True)
        self.fields["budget"].widget.attrs.update(min="0", step="1")

    def clean_utm_campaign(self) -> str:
        code = self.cleaned_data["utm_campaign"]
        others = Campaign.objects.exclude(pk=self.instance.pk)
        if code and others.filter(utm_campaign=code).exists():
            raise forms.ValidationError(_("Another campaign uses this UTM code."))
        return code

    def clean_budget(self):
        budget = self.cleaned_data["budget"]
        if budget is not None and budget < 0:
            raise forms.ValidationError(_("The budget cannot be negative."))
        return budget

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].strip().upper()

    def clean(self):
        cleaned = super().clean()
        starts, ends = cleaned.get("starts_on"), cleaned.get("ends_on")
        if starts and ends and ends < starts:
            self.add_error("ends_on", _("The campaign cannot end before it starts."))
        return cleaned


class WebFormForm(forms.ModelForm):
    """The form's settings, with its consent wording (versioned on save)."""

    # A thank-you page typed without a scheme is on a modern site.
    thank_you_url = forms.URLField(
        label=_("Thank-you page"),
        required=False,
        assume_scheme="https",
        help_text=_("Where a browser goes after submitting; blank for our message."),
    )
    consent_purpose = forms.CharField(
        label=_("Consent purpose"),
        max_length=200,
        required=False,
        help_text=_("What the consent is for, e.g. “Marketing emails”."),
    )
    consent_text_en = forms.CharField(
        label=_("Consent text (English)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    consent_text_vi = forms.CharField(
        label=_("Consent text (Vietnamese)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    class Meta:
        model = WebForm
        fields = [
            "name",
            "interaction_kind",
            "is_active",
            "thank_you_message_en",
            "thank_you_message_vi",
            "thank_you_url",
            "capture_utm",
            "allowed_origins",
            "double_opt_in",
            "require_render_token",
            "min_fill_seconds",
        ]
        widgets = {
            "thank_you_message_en": forms.Textarea(attrs={"rows": 2}),
            "thank_you_message_vi": forms.Textarea(attrs={"rows": 2}),
            "allowed_origins": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.pk and self.instance.consent_texts.first()
        if current:
            self.initial.setdefault("consent_purpose", current.purpose)
            self.initial.setdefault("consent_text_en", current.text_en)
            self.initial.setdefault("consent_text_vi", current.text_vi)

    def clean_allowed_origins(self) -> str:
        origins = []
        for line in self.cleaned_data["allowed_origins"].split():
            parts = urlsplit(line.strip())
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise forms.ValidationError(
                    _("%(origin)s is not an origin like https://example.com."),
                    params={"origin": line},
                )
            origins.append(f"{parts.scheme}://{parts.netloc}")
        return "\n".join(origins)

    def clean(self):
        cleaned = super().clean()
        text = (cleaned.get("consent_text_en") or "").strip()
        if text and not (cleaned.get("consent_purpose") or "").strip():
            self.add_error("consent_purpose", _("Say what the consent is for."))
        if cleaned.get("double_opt_in") and not text:
            self.add_error(
                "consent_text_en", _("Double opt-in needs a consent text to confirm.")
            )
        return cleaned


class FormFieldForm(forms.ModelForm):
    class Meta:
        model = FormField
        fields = ["name", "input_type", "label_en", "label_vi", "required", "position"]
        # Shown as a table of bare inputs: the column heads are the labels.
        widgets = {
            "name": forms.TextInput(
                attrs={"list": "lead-fields", "class": "form-control form-control-sm"}
            ),
            "input_type": forms.Select(attrs={"class": "form-select form-select-sm"}),
            "label_en": forms.TextInput(
                attrs={"class": "form-control form-control-sm"}
            ),
            "label_vi": forms.TextInput(
                attrs={"class": "form-control form-control-sm"}
            ),
            "required": forms.CheckboxInput(attrs={"class": "form-check-input"}),
            "position": forms.NumberInput(
                attrs={"class": "form-control form-control-sm", "min": "0"}
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Bare inputs in a table still tell a screen reader what they are.
        for field in self.fields.values():
            field.widget.attrs.setdefault("aria-label", field.label)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].lower()
        if name in RESERVED_NAMES or name in UTM_KEYS:
            raise forms.ValidationError(
                _("%(name)s is reserved for the form itself."), params={"name": name}
            )
        return name


class BaseFieldFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        rows = [
            form.cleaned_data["name"]
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        names = set(rows)
        if len(names) < len(rows):
            raise forms.ValidationError(_("Each field may be on the form once."))
        if names and not names & {"email", "phone"}:
            raise forms.ValidationError(
                _("A form needs an email or a phone field to identify the lead.")
            )
        self.field_names = names


FormFieldFormSet = inlineformset_factory(
    WebForm,
    FormField,
    form=FormFieldForm,
    formset=BaseFieldFormSet,
    extra=3,
    can_delete=True,
)

# For the builder's list of suggestions.
LEAD_FIELD_CHOICES = [(name, label) for name, (_type, label) in LEAD_FIELDS.items()]
