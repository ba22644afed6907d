from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from .models import WebForm
        from .selectors import forget_forms

        # This process sees a changed form at once; others within the
        # cache's few seconds.
        for signal in (post_save, post_delete):
            signal.connect(lambda **kwargs: forget_forms(), sender=WebForm, weak=False)
