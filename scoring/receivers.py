import logging

from leadcrm.queue import enqueue

logger = logging.getLogger(__name__)


def rescore_changed_lead(sender, *, lead_id: int, **kwargs) -> None:
    from .tasks import recompute_lead

    # If the broker is down the lead stays marked stale and the periodic
    # sweeper rescores it later.
    enqueue(recompute_lead, lead_id)


def install_default_rules(sender, *, apps=None, **kwargs) -> None:
    from django.apps import apps as global_apps

    from .rules import install_default_rule_set

    apps = apps or global_apps
    try:
        models = [
            apps.get_model("scoring", name)
            for name in ("RuleSet", "EngagementRule", "FitRule")
        ]
    except LookupError:
        return
    if install_default_rule_set(*models):
        logger.info("Installed the default scoring rule set")
