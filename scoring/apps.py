from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = _("Scoring")

    def ready(self) -> None:
        from leads.signals import lead_changed

        from . import receivers

        lead_changed.connect(receivers.rescore_changed_lead, dispatch_uid="rescore")
