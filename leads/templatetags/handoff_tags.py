from django import template
from django.utils import timezone

register = template.Library()


@register.inclusion_tag("sales/_sla_badge.html")
def sla_state(lead):
    """The lead's SLA at a glance: what is overdue, and when it is due."""
    now = timezone.now()
    return {
        "lead": lead,
        "accept_breached": lead.accept_breached(now),
        "contact_breached": lead.contact_breached(now),
        "awaiting_accept": lead.accepted_at is None and lead.accept_due_at,
        "awaiting_contact": lead.first_contacted_at is None and lead.contact_due_at,
    }
