from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = _("Scoring")

    def ready(self) -> None:
        from leads.selectors import rule_codes_register
        from leads.signals import lead_changed, leads_changed

        from . import receivers, selectors

        lead_changed.connect(receivers.rescore_changed_lead, dispatch_uid="rescore")
        leads_changed.connect(
            receivers.rescore_changed_leads, dispatch_uid="rescore_many"
        )
        # After every migrate, and after the flush between transactional
        # tests, an installation without rules gets the default rule set.
        post_migrate.connect(
            receivers.install_default_rules, sender=self, dispatch_uid="rules"
        )
        rule_codes_register(selectors.rule_codes_for_version)
