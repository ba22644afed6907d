"""Forms of the email pages. They gather input; the services check it."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

from .emails import MERGE_FIELDS, Template
from .models import EmailCampaign, Segment


class SegmentNameForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)


class EmailCampaignForm(forms.ModelForm):
    class Meta:
        model = EmailCampaign
        fields = ["name", "campaign", "segment", "from_email", "subject", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 14})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = Segment.objects.order_by("name")
        # Help texts are shown as HTML: <key> must not read as a tag.
        self.fields["body"].help_text = escape(
            _(
                "Plain text. Merge fields: %(fields)s and {custom.<key>}; add a "
                "fallback after a bar, e.g. {first_name|there}. Web addresses "
                "become tracked links; an unsubscribe link is added."
            )
            % {"fields": ", ".join(f"{{{name}}}" for name in MERGE_FIELDS)}
        )

    def clean(self):
        cleaned = super().clean()
        try:
            Template.of(
                subject=cleaned.get("subject") or "", body=cleaned.get("body") or ""
            )
        except ValidationError as exc:
            for field, errors in exc.error_dict.items():
                if field in self.fields and field not in self.errors:
                    self.add_error(field, errors)
        return cleaned


class TestSendForm(forms.Form):
    to = forms.EmailField(label=_("Send a test to"))
