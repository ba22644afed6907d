import logging

from leadcrm.queue import enqueue

logger = logging.getLogger(__name__)


def rescore_changed_lead(sender, *, lead_id: int, **kwargs) -> None:
    from celery import current_task

    from .services import rescore_if_stale
    from .tasks import recompute_lead

    # Inside a worker's task (a form post being processed) the lead is
    # scored right away: queued behind a backlog of posts, its level would
    # wait for all of them. Elsewhere the work goes to a worker; if the
    # broker is down the lead stays stale and the sweeper rescores it.
    if current_task and not current_task.request.called_directly:
        rescore_if_stale(lead_id=lead_id)
        return
    enqueue(recompute_lead, lead_id)


def rescore_changed_leads(sender, *, lead_ids: list[int], **kwargs) -> None:
    from celery import current_task

    from .services import rescore_stale_many
    from .tasks import recompute_lead

    # A worker draining a batch of posts scores the batch's leads together:
    # one set of queries for all of them instead of a set each.
    if current_task and not current_task.request.called_directly:
        rescore_stale_many(lead_ids=lead_ids)
        return
    for lead_id in lead_ids:
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
