from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _

from .events import IMPORT_MAX_BYTES
from .models import Event, WebForm


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def _https_links(db_field, **kwargs):
    # A link typed without a scheme is on a modern site.
    if isinstance(db_field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return db_field.formfield(**kwargs)


class EventForm(forms.ModelForm):
    """An event's details; Event.clean() checks times, place and form."""

    class Meta:
        model = Event
        fields = (
            "campaign",
            "name",
            "kind",
            "starts_at",
            "ends_at",
            "venue",
            "online_url",
            "capacity",
            "form",
        )
        widgets = {"starts_at": DateTimeInput(), "ends_at": DateTimeInput()}
        formfield_callback = _https_links

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A form already registering for another event is not offered.
        taken = Event.objects.exclude(pk=self.instance.pk).exclude(form=None)
        self.fields["form"].queryset = (
            WebForm.objects.filter(is_active=True)
            .exclude(pk__in=taken.values("form"))
            .select_related("campaign")
        )


class AttendanceImportForm(forms.Form):
    file = forms.FileField(
        label=_("Attendance file (CSV)"),
        help_text=_(
            "UTF-8, comma- or semicolon-separated, with an email or phone "
            "column and optionally a name column."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than 2 MB."))
        return upload
