"""Leads at the levels sales works with, made the way the CRM makes them."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from leads.models import Channel, InteractionKind, Lead
from leads.services import InteractionData, lead_bant_set
from scoring.services import score_recompute


def mql_lead(
    make_lead, *, email="an@vinatech.vn", name="Nguyễn Văn An", owner=None, **extra
):
    """An MQL lead, given to `owner` (a rep sees only the leads they own)."""
    lead = make_lead(
        email=email,
        full_name=name,
        company="VinaTech",
        phone=extra.pop("phone", ""),
        interactions=[
            InteractionData(
                kind=InteractionKind.DEMO_REQUEST,
                channel=Channel.WEB_FORM,
                occurred_at=timezone.now() - timedelta(hours=1),
            )
        ],
        score=True,
        **extra,
    )
    assert lead.level == "mql"
    if owner is not None:
        Lead.objects.filter(pk=lead.pk).update(owner=owner)
        lead.owner = owner
    return lead


def sql_lead(make_lead, rep, **kwargs):
    """An MQL whose budget, need and timeline a rep confirmed: an SQL."""
    lead = mql_lead(make_lead, owner=kwargs.pop("owner", rep), **kwargs)
    soon = timezone.localdate() + timedelta(days=30)
    for criterion, values in (
        ("budget", {"amount": Decimal("120000000"), "currency": "VND"}),
        ("need", {"text": "Replace spreadsheets"}),
        ("timeline", {"date": soon}),
    ):
        lead_bant_set(
            lead_id=lead.pk, criterion=criterion, confirmed=True, by=rep, **values
        )
    lead = score_recompute(lead_id=lead.pk)
    assert lead.level == "sql"
    return lead
