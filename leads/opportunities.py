"""Opportunities: converting a sales-qualified lead and moving the deal
through the pipeline until it is won (the lead becomes a customer) or lost
(with a coded reason). Every stage a deal enters is kept in its history.
"""

import logging
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, Count, F, Q, QuerySet, Sum, When, Window
from django.db.models.functions import RowNumber
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import (
    Lead,
    LeadStatus,
    Level,
    Opportunity,
    OpportunityStage,
    OpportunityStageChange,
    ReasonCode,
)
from .normalize import fold_for_search, storable_text

logger = logging.getLogger(__name__)

OPEN_STAGES = (
    OpportunityStage.QUALIFICATION,
    OpportunityStage.PROPOSAL,
    OpportunityStage.NEGOTIATION,
)
CLOSED_STAGES = (OpportunityStage.WON, OpportunityStage.LOST)


@dataclass(frozen=True)
class OpportunityInput:
    name: str
    amount: Decimal
    expected_close_on: date
    currency: str = "VND"
    stage: str = OpportunityStage.QUALIFICATION


def _require(user, permission: str) -> None:
    if user is None or not user.has_perm(permission):
        raise PermissionDenied(_("You may not change opportunities."))


def opportunity_convert(*, lead_id: int, by, data: OpportunityInput) -> Opportunity:
    """Convert a sales-qualified lead into its one opportunity.

    The lead's row lock serialises concurrent conversions, so the second one
    finds the first; the one-to-one on Opportunity.lead backs it up.
    """
    _require(by, "leads.add_opportunity")
    data = _input_clean(data)

    try:
        with transaction.atomic():
            lead = Lead.objects.select_for_update().get(pk=lead_id)
            _check_convertible(lead)
            opportunity = Opportunity.objects.create(
                lead=lead,
                name=data.name,
                amount=data.amount,
                currency=data.currency,
                expected_close_on=data.expected_close_on,
                stage=data.stage,
                owner=lead.owner or by,
                team=lead.team,
            )
            OpportunityStageChange.objects.create(
                opportunity=opportunity, to_stage=data.stage, changed_by=by
            )
    except IntegrityError as exc:
        raise _already_converted() from exc

    logger.info("Lead %s converted into opportunity %s", lead_id, opportunity.pk)
    return opportunity


def _already_converted() -> ValidationError:
    return ValidationError(
        _("This lead was converted already; it has one opportunity."),
        code="already_converted",
    )


def _check_convertible(lead: Lead) -> None:
    if Opportunity.objects.filter(lead=lead).exists():
        raise _already_converted()
    if lead.status != LeadStatus.OPEN:
        raise ValidationError(
            _("Only an open lead can be converted; this one is %(status)s.")
            % {"status": lead.get_status_display().lower()},
            code="not_open",
        )
    if lead.level != Level.SQL:
        raise ValidationError(
            _("Only a sales-qualified lead (SQL) can be converted."), code="not_sql"
        )


def _input_clean(data: OpportunityInput, *, new: bool = True) -> OpportunityInput:
    errors: dict[str, str] = {}
    name = " ".join(data.name.split())[:200]
    currency = (data.currency or "").strip().upper()
    if not name:
        errors["name"] = _("Give the opportunity a name.")
    if data.amount is None or data.amount < 0:
        errors["amount"] = _("Enter an amount of zero or more.")
    if len(currency) != 3 or not currency.isalpha():
        errors["currency"] = _("Use a three-letter code such as VND.")
    if new and data.stage not in OPEN_STAGES:
        errors["stage"] = _("A new opportunity starts in an open stage.")
    if errors:
        raise ValidationError(errors)
    return OpportunityInput(
        name=name,
        amount=data.amount,
        expected_close_on=data.expected_close_on,
        currency=currency,
        stage=data.stage,
    )


def opportunity_update(
    *, opportunity_id: int, by, data: OpportunityInput
) -> Opportunity:
    """Correct a deal's name, amount, currency or expected close; its stage
    changes only through `opportunity_move`."""
    _require(by, "leads.change_opportunity")
    if not by.has_perm("leads.view_opportunity_amount"):
        raise PermissionDenied(_("You may not change an amount you cannot see."))
    data = _input_clean(data, new=False)

    with transaction.atomic():
        opportunity = Opportunity.objects.select_for_update().get(pk=opportunity_id)
        opportunity.name = data.name
        opportunity.amount = data.amount
        opportunity.currency = data.currency
        opportunity.expected_close_on = data.expected_close_on
        opportunity.save(
            update_fields=[
                "name",
                "amount",
                "currency",
                "expected_close_on",
                "updated_at",
            ]
        )

    logger.info("Opportunity %s edited by user %s", opportunity.pk, by.pk)
    return opportunity


@transaction.atomic
def opportunity_move(
    *, opportunity_id: int, by, to_stage: str, reason_code: str = "", note: str = ""
) -> Opportunity:
    """Move a deal to another stage and record it.

    Won makes the lead a customer; lost needs a coded reason (and a note
    when the reason is Other). Moving a closed deal back reopens it, and a
    lead that was a customer through it is open again.
    """
    _require(by, "leads.change_opportunity")
    if to_stage not in OpportunityStage.values:
        raise ValidationError({"to_stage": _("Choose a stage.")})
    note = note.strip()
    if to_stage == OpportunityStage.LOST:
        if reason_code not in ReasonCode.values:
            raise ValidationError({"reason_code": _("Say why the deal was lost.")})
        if reason_code == ReasonCode.OTHER and not note:
            raise ValidationError({"note": _("Say why, when the reason is Other.")})

    opportunity = Opportunity.objects.select_for_update().get(pk=opportunity_id)
    from_stage = opportunity.stage
    if from_stage == to_stage and to_stage != OpportunityStage.LOST:
        return opportunity

    opportunity.stage = to_stage
    closing = to_stage in CLOSED_STAGES
    opportunity.closed_at = timezone.now() if closing else None
    lost = to_stage == OpportunityStage.LOST
    opportunity.lost_reason = reason_code if lost else ""
    opportunity.lost_note = note if lost else ""
    opportunity.save(
        update_fields=["stage", "closed_at", "lost_reason", "lost_note", "updated_at"]
    )
    OpportunityStageChange.objects.create(
        opportunity=opportunity,
        from_stage=from_stage,
        to_stage=to_stage,
        changed_by=by,
        reason_code=reason_code if lost else "",
        note=note,
    )
    _follow_on_lead(opportunity, from_stage, to_stage)

    logger.info(
        "Opportunity %s moved %s -> %s by user %s",
        opportunity.pk,
        from_stage,
        to_stage,
        by.pk,
    )
    return opportunity


def _follow_on_lead(opportunity: Opportunity, from_stage: str, to_stage: str) -> None:
    if to_stage == OpportunityStage.WON:
        Lead.objects.filter(pk=opportunity.lead_id).update(
            status=LeadStatus.CUSTOMER, updated_at=timezone.now()
        )
    elif from_stage == OpportunityStage.WON:
        Lead.objects.filter(pk=opportunity.lead_id, status=LeadStatus.CUSTOMER).update(
            status=LeadStatus.OPEN, updated_at=timezone.now()
        )


# Reads -------------------------------------------------------------------


def opportunity_list(
    *, user, query: str = "", stage: str = ""
) -> QuerySet[Opportunity]:
    """The opportunities a user may see, searched by the deal's name or the
    lead's name, email, phone or company (diacritics ignored)."""
    opportunities = Opportunity.objects.visible_to(user).select_related("lead", "owner")
    if stage in OpportunityStage.values:
        opportunities = opportunities.filter(stage=stage)
    for word in storable_text(query).split():
        # The lead's search text is folded (no case, no diacritics); the
        # deal's name is matched as typed.
        folded = fold_for_search(word)
        opportunities = opportunities.filter(
            Q(name__icontains=word) | Q(lead__search_text__icontains=folded)
        )
    return opportunities.order_by("-created_at", "-id")


def opportunity_detail(*, user, pk: int) -> Opportunity:
    return get_object_or_404(
        Opportunity.objects.visible_to(user).select_related("lead", "owner", "team"),
        pk=pk,
    )


def opportunity_history(*, opportunity: Opportunity) -> list[OpportunityStageChange]:
    return list(
        opportunity.stage_changes.select_related("changed_by").order_by(
            "-created_at", "-id"
        )
    )


@dataclass
class PipelineColumn:
    stage: str
    label: str
    count: int = 0
    # Amounts are only summed within a currency: currency -> total.
    totals: dict[str, Decimal] = field(default_factory=dict)
    opportunities: list[Opportunity] = field(default_factory=list)

    @property
    def shown_all(self) -> bool:
        return len(self.opportunities) >= self.count


PIPELINE_CARDS = 50


def pipeline(*, user, limit: int = PIPELINE_CARDS) -> list[PipelineColumn]:
    """Opportunities by stage: count and totals per currency from one
    aggregate, then up to `limit` cards a column (soonest close first)."""
    visible = Opportunity.objects.visible_to(user)
    columns = {
        stage: PipelineColumn(stage=stage, label=str(label))
        for stage, label in OpportunityStage.choices
    }
    totals = (
        visible.order_by()
        .values("stage", "currency")
        .annotate(count=Count("pk"), total=Sum("amount"))
    )
    for row in totals:
        column = columns[row["stage"]]
        column.count += row["count"]
        column.totals[row["currency"]] = row["total"]

    # The first `limit` cards of every column in one query: open deals by
    # their expected close, closed ones latest first.
    closed_at = Case(When(stage__in=CLOSED_STAGES, then=F("closed_at")))
    ranked = visible.annotate(
        position=Window(
            RowNumber(),
            partition_by=F("stage"),
            order_by=[
                closed_at.desc(nulls_last=True),
                F("expected_close_on").asc(),
                F("pk").asc(),
            ],
        )
    )
    cards = (
        ranked.filter(position__lte=limit)
        .select_related("lead")
        .order_by("stage", "position")
    )
    for opportunity in cards:
        columns[opportunity.stage].opportunities.append(opportunity)
    for column in columns.values():
        column.totals = dict(sorted(column.totals.items()))
    return list(columns.values())
