"""Every write to a lead or its interactions goes through this module.

`lead_ingest` is the single entry for new information about a person, from
any channel: web forms, imports, the API, admin and manual entry. It
normalises identity the same way everywhere, finds or creates the lead
race-safely, merges fields without erasing known values and appends
interactions idempotently.
"""

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from datetime import date as date_type
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Protocol

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .amounts import AMOUNT_LIMIT
from .bulk import insert_rows
from .models import (
    Bant,
    BantCriterion,
    BantStatus,
    Interaction,
    InteractionKind,
    Lead,
    LeadStatus,
    Level,
    LevelChange,
    ReasonCode,
    StageAction,
)
from .normalize import (
    clean_json,
    fold_for_search,
    normalize_email,
    normalize_name,
    normalize_phone,
    storable_text,
)
from .signals import lead_changed, leads_changed

logger = logging.getLogger(__name__)

PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "full_name",
    "company",
    "job_title",
    "industry",
    "city",
    "country",
    "source",
    "origin",
)
NAME_FIELDS = ("first_name", "last_name", "full_name")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

IDENTITIES = ("email", "phone", "external_id")
_KINDS = frozenset(InteractionKind.values)
# A unique constraint lost to a concurrent insert is retried this many times;
# the retry finds the row the other transaction committed.
_RACE_RETRIES = 3
EARLIEST_INTERACTION = datetime(1990, 1, 1, tzinfo=UTC)
# The history row of a new lead.
_CREATED = {
    "to_level": Level.IQL,
    "rule": "contact_details_known",
    # Stored in English, translated where it is shown.
    "reason": gettext_noop("Contact details captured."),
}


@dataclass(frozen=True)
class LeadData:
    """What a channel knows about a person, before normalisation."""

    email: str = ""
    phone: str = ""
    external_id: str = ""
    first_name: str = ""
    last_name: str = ""
    full_name: str = ""
    company: str = ""
    job_title: str = ""
    industry: str = ""
    city: str = ""
    country: str = ""
    source: str = ""
    origin: str = ""
    custom: Mapping[str, object] = field(default_factory=dict)
    utm: Mapping[str, str] = field(default_factory=dict)
    campaign_id: int | None = None
    email_consent: bool | None = None
    known_outcome: bool | None = None
    # BANT the lead states, e.g. on a quote form: criterion -> amount,
    # currency, text, date. Never overwrites what sales confirmed.
    bant: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


@dataclass(frozen=True)
class InteractionData:
    kind: str
    channel: str
    occurred_at: datetime | None = None
    subject: str = ""
    quantity: int = 1
    campaign_id: int | None = None
    details: Mapping[str, object] = field(default_factory=dict)
    # The same key twice records the interaction once: a redelivered task or
    # a re-imported row adds nothing.
    idempotency_key: str | None = None


@dataclass
class IngestResult:
    lead: Lead
    created: bool
    interactions_created: int
    updated_fields: list[str] = field(default_factory=list)
    # The identity values set aside as invalid (kept in the custom data as
    # invalid_<field>), with why: {"email": ["Enter a valid email address."]}.
    set_aside: dict[str, list[str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.created or bool(self.interactions_created or self.updated_fields)


@dataclass(frozen=True)
class IngestItem:
    """One person's data and interactions, for `lead_ingest_many`."""

    data: LeadData
    interactions: Sequence[InteractionData] = ()


@dataclass(frozen=True)
class BatchIngestResult:
    """What `lead_ingest_many` made of one item: its lead, or why not."""

    lead_id: int | None
    created: bool = False
    interactions_created: int = 0
    error: ValidationError | None = None


def identity_errors(*, email: str, phone: str) -> tuple[str, str, dict[str, list]]:
    """Normalise email and phone; return both and the errors of each.

    A value that fails is returned blank with its messages in the errors.
    """
    errors: dict[str, list] = {}
    clean = {}
    for name, func, raw in (
        ("email", normalize_email, email),
        ("phone", normalize_phone, phone),
    ):
        try:
            clean[name] = func(raw)
        except ValidationError as exc:
            clean[name] = ""
            errors[name] = exc.messages
    return clean["email"], clean["phone"], errors


@cache
def _max_length(name: str) -> int:
    return Lead._meta.get_field(name).max_length


def interaction_data_clean(item: InteractionData, now: datetime) -> InteractionData:
    """Interaction times must be plausible: decay and windows are computed
    from them, and a date centuries away would poison every batch."""
    if item.kind not in _KINDS:
        raise ValidationError({"kind": _("Unknown interaction kind.")})
    when = item.occurred_at or now
    if when < EARLIEST_INTERACTION or when > now + timedelta(days=1):
        raise ValidationError(
            {"occurred_at": _("The interaction's time is not plausible.")}
        )
    if item.idempotency_key and len(item.idempotency_key) > 200:
        raise ValidationError({"idempotency_key": _("The key is too long.")})
    return replace(
        item,
        occurred_at=when,
        subject=normalize_name(item.subject)[:200],
        details=clean_json(dict(item.details)),
    )


def lead_data_clean(data: LeadData) -> LeadData:
    """Normalise a LeadData or raise ValidationError with field errors.

    A lead needs a valid email or phone, or an external id from a source
    system. An invalid email beside a valid phone (or the reverse) does not
    sink the submission: the bad value is kept in the custom data.
    """
    return _lead_data_clean(data)[0]


def _lead_data_clean(data: LeadData) -> tuple[LeadData, dict[str, list]]:
    """lead_data_clean, and the errors of the identity values it set aside."""
    email, phone, errors = identity_errors(email=data.email, phone=data.phone)
    external_id = normalize_name(data.external_id)[: _max_length("external_id")]
    if not (email or phone or external_id):
        if not errors:
            errors["email"] = [_("Enter an email address or a phone number.")]
        raise ValidationError(errors)

    custom = clean_json(dict(data.custom))
    for name in errors:
        custom[f"invalid_{name}"] = storable_text(str(getattr(data, name)))[:254]
    # A value longer than its column is cut, not refused: a long job title
    # must not lose the person who typed it.
    names = {
        name: normalize_name(getattr(data, name))[: _max_length(name)]
        for name in PROFILE_FIELDS
    }
    if not names["full_name"]:
        names["full_name"] = " ".join(
            part for part in (names["first_name"], names["last_name"]) if part
        )
    utm = {
        key: normalize_name(str(value))[:200]
        for key, value in data.utm.items()
        if key in UTM_KEYS and value
    }
    clean = replace(
        data,
        email=email,
        phone=phone,
        external_id=external_id,
        custom=custom,
        utm=utm,
        **names,
    )
    return clean, errors


def lead_ingest(
    *,
    data: LeadData,
    interactions: Sequence[InteractionData] = (),
    announce: bool = True,
) -> IngestResult:
    """Record what a channel knows about a person: the one way leads are made.

    With `announce` off the caller takes on rescoring (bulk imports rescore
    in batches at the end instead of one task per lead).
    """
    now = timezone.now()
    clean, set_aside = _lead_data_clean(data)
    interactions = [interaction_data_clean(i, now) for i in interactions]

    result = _ingest_retrying(clean, interactions)
    result.set_aside = set_aside

    if announce and result.changed:
        transaction.on_commit(lambda lead_id=result.lead.pk: _announce(lead_id))
    return result


def _clean_item(
    item: "IngestItem", now: datetime
) -> tuple[LeadData, list[InteractionData]]:
    clean = lead_data_clean(item.data)
    return clean, [interaction_data_clean(i, now) for i in item.interactions]


def _ingest_retrying(
    clean: LeadData, interactions: Sequence[InteractionData]
) -> IngestResult:
    for attempt in range(1, _RACE_RETRIES + 1):
        try:
            with transaction.atomic():
                return _ingest_once(clean, interactions)
        except IntegrityError:
            if attempt == _RACE_RETRIES:
                raise
            logger.info("Ingest lost a uniqueness race, retrying (attempt %s)", attempt)
    raise AssertionError("unreachable")


def lead_ingest_many(*, items: Sequence[IngestItem]) -> list[BatchIngestResult]:
    """Ingest many people at once, in the caller's transaction, with the
    outcome `lead_ingest` would give each of them in turn.

    First sights of people (no identity or interaction key of theirs is
    known, nor shared with another item) are created together, in a fixed
    number of statements however many they are. Every other item (a
    returning lead, a redelivery, two posts of one person) then goes
    through `lead_ingest`'s own steps, in order; sharing no identity with
    the new leads, none of them could have merged into one. A first sight
    that loses a race to a concurrent insert is handled the same way.

    Nothing is announced: the caller rescores the leads together
    (`leads_announce`) once its transaction commits.
    """
    now = timezone.now()
    results: dict[int, BatchIngestResult] = {}
    cleaned: dict[int, tuple[LeadData, list[InteractionData]]] = {}
    for index, item in enumerate(items):
        try:
            cleaned[index] = _clean_item(item, now)
        except ValidationError as exc:
            results[index] = BatchIngestResult(lead_id=None, error=exc)

    # The set-based path is PostgreSQL's; elsewhere (make run's SQLite)
    # every item takes the steps of one.
    if connection.vendor == "postgresql":
        results.update(_create_first_sights(cleaned, now))

    for index in sorted(cleaned.keys() - results.keys()):
        try:
            result = _ingest_retrying(*cleaned[index])
        except ValidationError as exc:
            results[index] = BatchIngestResult(lead_id=None, error=exc)
        else:
            results[index] = BatchIngestResult(
                lead_id=result.lead.pk,
                created=result.created,
                interactions_created=result.interactions_created,
            )

    return [results[index] for index in range(len(items))]


def _identities(clean: LeadData) -> list[tuple[str, str]]:
    return [(attr, getattr(clean, attr)) for attr in IDENTITIES if getattr(clean, attr)]


def _first_sights(cleaned: Mapping[int, tuple[LeadData, list]]) -> list[int]:
    """The items that are the first sight of a person: no identity or
    interaction key of theirs is held by a lead or by another item."""
    identities = Counter(
        identity for clean, _ in cleaned.values() for identity in _identities(clean)
    )
    keys = Counter(
        item.idempotency_key
        for _, interactions in cleaned.values()
        for item in interactions
        if item.idempotency_key
    )
    known = _known(identities, keys)

    def first_sight(clean: LeadData, interactions: list[InteractionData]) -> bool:
        mine = [*_identities(clean)] + [
            ("key", item.idempotency_key)
            for item in interactions
            if item.idempotency_key
        ]
        counts = {**identities, **{("key", k): n for k, n in keys.items()}}
        return all(counts[i] == 1 and i not in known for i in mine)

    return [index for index, item in cleaned.items() if first_sight(*item)]


# Each value is looked up by itself, in its unique index: a lateral join
# (kept one by LIMIT) is probed row by row whatever the planner believes of
# the tables, where one `= ANY` of hundreds of values is read as most of a
# table it has no statistics for yet (a new installation, the first minute
# of a burst).
_KNOWN_SQL = " UNION ALL ".join(
    f"""SELECT %(kind_{n})s, t.{column} FROM unnest(%({n})s::text[]) AS v(value)
    CROSS JOIN LATERAL (
        SELECT {column} FROM {table} WHERE {column} = v.value AND {column} <> ''
        LIMIT 1
    ) AS t"""
    for n, (table, column) in enumerate(
        [(Lead._meta.db_table, attr) for attr in IDENTITIES]
        + [(Interaction._meta.db_table, "idempotency_key")]
    )
)


def _known(
    identities: Iterable[tuple[str, str]], keys: Iterable[str]
) -> set[tuple[str, str]]:
    """Which of these identities and interaction keys are recorded already,
    as (attribute, value) pairs; keys as ("key", key)."""
    wanted: dict[str, list[str]] = {attr: [] for attr in (*IDENTITIES, "key")}
    for attr, value in identities:
        wanted[attr].append(value)
    wanted["key"] = list(keys)
    params = {}
    for n, (attr, values) in enumerate(wanted.items()):
        params[str(n)], params[f"kind_{n}"] = values, attr
    with connection.cursor() as cursor:
        cursor.execute(_KNOWN_SQL, params)
        return set(cursor.fetchall())


def _create_first_sights(
    cleaned: Mapping[int, tuple[LeadData, list[InteractionData]]], now: datetime
) -> dict[int, BatchIngestResult]:
    """Create the leads of first sights, with their interactions, stated
    BANT and history, in one statement a table."""
    # Concurrent batches holding some of the same new people insert them in
    # one order (by identity), so one waits for the other instead of each
    # waiting on a row the other inserted first: a deadlock. Rows whose
    # emails and phones pair up differently in two batches can still cross;
    # the drain then processes that batch's posts one by one.
    fresh = sorted(
        _first_sights(cleaned),
        key=lambda index: [getattr(cleaned[index][0], a) for a in IDENTITIES],
    )
    if not fresh:
        return {}

    rows = []
    for index in fresh:
        clean, interactions = cleaned[index]
        values = _new_lead_values(clean)
        values["last_interaction_at"] = max(
            (item.occurred_at for item in interactions), default=None
        )
        values["created_at"] = now
        rows.append(values)
    # A concurrent insert of one of these people wins; the loser is left
    # out here and merged into the winner's lead like a returning person.
    inserted = insert_rows(
        Lead, rows, returning=("id", *IDENTITIES), ignore_conflicts=True
    )
    index_of = {
        identity: index
        for index in fresh
        for identity in _identities(cleaned[index][0])
    }
    lead_of = {}
    for lead_id, *identity in inserted:
        mine = next((a, v) for a, v in zip(IDENTITIES, identity, strict=True) if v)
        lead_of[index_of[mine]] = lead_id

    recorded = _append_interactions_many(
        {lead_of[i]: cleaned[i] for i in lead_of}, now=now
    )
    insert_rows(
        LevelChange, [{"lead_id": lead_id, **_CREATED} for lead_id in lead_of.values()]
    )
    for index, lead_id in lead_of.items():
        clean = cleaned[index][0]
        if clean.bant:
            _record_stated_bant(Lead(pk=lead_id), clean.bant)

    if lead_of:
        logger.info(
            "Created %s leads together (ids %s to %s)",
            len(lead_of),
            min(lead_of.values()),
            max(lead_of.values()),
        )
    return {
        index: BatchIngestResult(
            lead_id=lead_id, created=True, interactions_created=recorded[lead_id]
        )
        for index, lead_id in lead_of.items()
    }


def _append_interactions_many(
    items: Mapping[int, tuple[LeadData, Sequence[InteractionData]]], *, now: datetime
) -> Counter:
    """The interactions of new leads (lead id -> its cleaned item); how many
    each lead got. A key another transaction has just recorded is skipped."""
    rows = [
        {
            "lead_id": lead_id,
            "kind": item.kind,
            "channel": item.channel,
            "occurred_at": item.occurred_at,
            "subject": item.subject,
            "quantity": max(int(item.quantity), 0),
            "campaign_id": item.campaign_id or clean.campaign_id,
            "details": item.details,
            "idempotency_key": item.idempotency_key or "",
            "created_at": now,
        }
        for lead_id, (clean, interactions) in items.items()
        for item in interactions
    ]
    inserted = insert_rows(
        Interaction, rows, returning=("lead_id",), ignore_conflicts=True
    )
    return Counter(lead_id for (lead_id,) in inserted)


def _announce(lead_id: int) -> None:
    lead_changed.send(sender=Lead, lead_id=lead_id)


def leads_announce(lead_ids: Iterable[int]) -> None:
    """Announce leads ingested with announce=False, all at once, so
    scoring can rescore them as one batch."""
    ids = sorted(set(lead_ids))
    if ids:
        leads_changed.send(sender=Lead, lead_ids=ids)


def _ingest_once(
    clean: LeadData, interactions: Sequence[InteractionData]
) -> IngestResult:
    keys = [i.idempotency_key for i in interactions if i.idempotency_key]
    known_keys = set(
        Interaction.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    )
    if keys and len(known_keys) == len(set(keys)) == len(interactions):
        # A redelivered task or a re-imported row: the interactions are
        # recorded already, but the profile may carry corrections.
        lead_id = (
            Interaction.objects.filter(idempotency_key=keys[0])
            .values_list("lead_id", flat=True)
            .get()
        )
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        if _other_person(lead, clean):
            raise ValidationError(
                {"idempotency_key": _("This key was already used for another person.")},
                code="idempotency_conflict",
            )
        updated = _merge_into(lead, clean)
        return IngestResult(
            lead=lead, created=False, interactions_created=0, updated_fields=updated
        )

    lead = _find_lead(clean)
    created = lead is None
    if lead is None:
        lead = _create_lead(clean)
        updated: list[str] = []
    else:
        updated = _merge_into(lead, clean)

    new = [i for i in interactions if i.idempotency_key not in known_keys]
    _append_interactions(lead, new, clean.campaign_id)
    if _record_stated_bant(lead, clean.bant):
        updated.append("bant")

    if created:
        LevelChange.objects.create(lead=lead, **_CREATED)
        logger.info("Lead %s created (source=%s)", lead.pk, clean.source or "-")

    return IngestResult(
        lead=lead,
        created=created,
        interactions_created=len(new),
        updated_fields=updated,
    )


def _other_person(lead: Lead, clean: LeadData) -> bool:
    """Whether known identities of the lead and the data disagree."""
    return any(
        getattr(clean, name) and getattr(lead, name)
        and getattr(clean, name) != getattr(lead, name)
        for name in ("email", "phone", "external_id")
    )  # fmt: skip


def leads_matching(
    *, data: LeadData, idempotency_keys: Sequence[str] = ()
) -> QuerySet[Lead]:
    """The known leads an ingest of `data` could merge into, found the way
    the ingest finds them: normalised identity, or an interaction key
    already recorded. For callers that must check visibility first."""
    match = _identity_match(lead_data_clean(data))
    keys = [key for key in idempotency_keys if key]
    if keys:
        match |= Q(
            pk__in=Interaction.objects.filter(idempotency_key__in=keys).values(
                "lead_id"
            )
        )
    return Lead.objects.filter(match)


def _identity_match(clean: LeadData) -> Q:
    match = Q(pk__in=[])
    for attr in ("email", "phone", "external_id"):
        value = getattr(clean, attr)
        if value:
            match |= _identity_q(attr, value)
    return match


def _find_lead(clean: LeadData) -> Lead | None:
    match = _identity_match(clean)

    # The row lock serialises concurrent submissions of one person, so two
    # merges never interleave.
    candidates = list(Lead.objects.select_for_update().filter(match).order_by("pk"))
    if not candidates:
        return None

    # The email is the strongest identity, then the phone, then a source
    # system's id; a conflict leaves the weaker identity on the other lead.
    for attr in ("email", "phone", "external_id"):
        value = getattr(clean, attr)
        for lead in candidates:
            if value and getattr(lead, attr) == value:
                return lead
    return candidates[0]


def _identity_q(name: str, value: str) -> Q:
    # Repeats the condition of the partial unique index on the field: SQLite
    # uses a partial index only for queries that state its condition, and
    # scans the whole table otherwise.
    return Q(**{name: value}) & ~Q(**{name: ""})


def _create_lead(clean: LeadData) -> Lead:
    lead = Lead(**_new_lead_values(clean))
    lead.save()
    return lead


def _new_lead_values(clean: LeadData) -> dict[str, object]:
    """A new lead's fields, by attribute name, from cleaned data: one or
    many leads are created from the same values."""
    values = {
        "email": clean.email,
        "phone": clean.phone,
        "external_id": clean.external_id,
        **{name: getattr(clean, name) for name in PROFILE_FIELDS},
        "custom": dict(clean.custom),
        "email_consent": clean.email_consent,
        "known_outcome": clean.known_outcome,
        "first_touch_campaign_id": clean.campaign_id,
        "last_touch_campaign_id": clean.campaign_id,
        "first_touch_utm": dict(clean.utm),
        "last_touch_utm": dict(clean.utm),
        "score_stale": True,
    }
    values["search_text"] = _search_text(values)
    return values


def _merge_into(lead: Lead, clean: LeadData) -> list[str]:
    """Copy what is new onto a known lead; blanks never erase known values."""
    updated = []
    for name in PROFILE_FIELDS:
        value = getattr(clean, name)
        if value and value != getattr(lead, name):
            setattr(lead, name, value)
            updated.append(name)

    for name in ("email", "phone", "external_id"):
        value = getattr(clean, name)
        if not value or getattr(lead, name):
            continue
        if (
            not Lead.objects.filter(_identity_q(name, value))
            .exclude(pk=lead.pk)
            .exists()
        ):
            setattr(lead, name, value)
            updated.append(name)

    merged_custom = {**lead.custom, **clean.custom}
    if merged_custom != lead.custom:
        lead.custom = merged_custom
        updated.append("custom")
    for name in ("email_consent", "known_outcome"):
        value = getattr(clean, name)
        if value is not None and value != getattr(lead, name):
            setattr(lead, name, value)
            updated.append(name)

    # A redelivery or an unchanged re-import writes nothing.
    touch = _touch_fields(lead, clean)
    if updated or touch:
        lead.search_text = _search_text(lead)
        lead.score_stale = True
        lead.save()
    return updated


def _stated_amount(value: object) -> Decimal | None:
    """A stated amount that fits Bant.amount, else unknown: a statement
    never fails the ingest of the lead."""
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or not 0 <= amount < AMOUNT_LIMIT:
        return None
    return amount


def _record_stated_bant(lead: Lead, stated: Mapping[str, Mapping]) -> bool:
    changed = False
    confirmed = (
        set(
            Bant.objects.filter(
                lead=lead, criterion__in=list(stated), status=BantStatus.CONFIRMED
            ).values_list("criterion", flat=True)
        )
        if stated
        else set()
    )
    for criterion, values in stated.items():
        if criterion not in BantCriterion.values or criterion in confirmed:
            continue
        Bant.objects.update_or_create(
            lead=lead,
            criterion=criterion,
            defaults={
                "status": BantStatus.STATED,
                "amount": _stated_amount(values.get("amount")),
                "currency": str(values.get("currency") or "")[:3].upper(),
                "text": normalize_name(str(values.get("text") or ""))[:500],
                "date": values.get("date"),
                "confirmed_by": None,
                "updated_at": timezone.now(),
            },
        )
        changed = True
    if changed:
        Lead.objects.filter(pk=lead.pk).update(score_stale=True)
    return changed


def _touch_fields(lead: Lead, clean: LeadData) -> list[str]:
    """Attribution: the first touch is kept, the last touch follows."""
    changed = []
    if clean.utm:
        if not lead.first_touch_utm:
            lead.first_touch_utm = dict(clean.utm)
            changed.append("first_touch_utm")
        if lead.last_touch_utm != clean.utm:
            lead.last_touch_utm = dict(clean.utm)
            changed.append("last_touch_utm")
    if clean.campaign_id:
        if not lead.first_touch_campaign_id:
            lead.first_touch_campaign_id = clean.campaign_id
            changed.append("first_touch_campaign")
        if lead.last_touch_campaign_id != clean.campaign_id:
            lead.last_touch_campaign_id = clean.campaign_id
            changed.append("last_touch_campaign")
    return changed


def _append_interactions(
    lead: Lead, interactions: Sequence[InteractionData], campaign_id: int | None
) -> None:
    # The items went through interaction_data_clean: times set, subject and
    # details storable.
    if not interactions:
        return

    rows = [
        Interaction(
            lead=lead,
            kind=item.kind,
            channel=item.channel,
            occurred_at=item.occurred_at,
            subject=item.subject,
            quantity=max(int(item.quantity), 0),
            campaign_id=item.campaign_id or campaign_id,
            details=item.details,
            idempotency_key=item.idempotency_key or "",
        )
        for item in interactions
    ]
    Interaction.objects.bulk_create(rows)

    latest = max(row.occurred_at for row in rows)
    if lead.last_interaction_at is None or latest > lead.last_interaction_at:
        Lead.objects.filter(pk=lead.pk).update(
            last_interaction_at=latest, score_stale=True
        )
        lead.last_interaction_at = latest
    else:
        Lead.objects.filter(pk=lead.pk).update(score_stale=True)


def _search_text(lead: Lead | Mapping[str, str]) -> str:
    get = lead.get if isinstance(lead, Mapping) else lambda name: getattr(lead, name)
    phone = get("phone")
    # Vietnamese numbers are also searched as dialled at home (0912...).
    local_phone = "0" + phone[3:] if phone.startswith("+84") else ""
    return fold_for_search(
        get("full_name"),
        get("first_name"),
        get("last_name"),
        get("email"),
        phone,
        local_phone,
        get("company"),
        get("external_id"),
    )


def lead_set_level(
    *,
    lead: Lead,
    to_level: str,
    rule: str = "",
    changed_by=None,
    reason: str = "",
) -> LevelChange | None:
    """Move a lead to another level and write its history row.

    The caller holds the lead's row lock. Returns None when nothing changes.
    """
    if lead.level == to_level:
        return None

    change = LevelChange.objects.create(
        lead=lead,
        from_level=lead.level,
        to_level=to_level,
        rule=rule,
        changed_by=changed_by,
        reason=reason,
        score=lead.score,
    )
    Lead.objects.filter(pk=lead.pk).update(level=to_level)
    logger.info(
        "Lead %s moved %s -> %s (rule=%s)", lead.pk, lead.level, to_level, rule or "-"
    )
    _start_handoff([change])
    lead.level = to_level
    return change


class LevelChangeRecord(Protocol):
    """A level change: a LevelChange row, or scoring's lighter record."""

    lead_id: int
    from_level: str
    to_level: str
    created_at: datetime


def _start_handoff(
    changes: Sequence[LevelChangeRecord], *, mql_at_written: bool = False
) -> None:
    """Leads that leave IQL for sales get their MQL time and an owner."""
    from .assignment import leads_reached_sales

    reached = [
        change
        for change in changes
        if change.from_level == Level.IQL and change.to_level in (Level.MQL, Level.SQL)
    ]
    if reached:
        leads_reached_sales(
            lead_ids=[change.lead_id for change in reached],
            at=reached[0].created_at,
            mql_at_written=mql_at_written,
        )


def leads_level_changed(
    *, changes: Sequence[LevelChangeRecord], mql_at_written: bool = False
) -> None:
    """Scoring's bulk path reports the level changes it wrote, inside its
    transaction, so the hand-off starts for the leads that became MQL.

    `mql_at_written` says the caller set their MQL time in the statement
    that moved them, saving a second write of each row."""
    _start_handoff(changes, mql_at_written=mql_at_written)


# What a person may change on a known lead by hand; scores, level and
# attribution are derived and change only through their own services.
EDITABLE_FIELDS = ("email", "phone", *PROFILE_FIELDS)


def lead_update(*, lead: Lead, changes: Mapping[str, str]) -> list[str]:
    """Set profile fields of a known lead, as a person corrected them.

    Unlike an ingest, a blank here does erase a value. Email and phone are
    normalised; ValidationError is raised for an invalid one, and
    IntegrityError if another lead holds the same one. Changes are compared
    with the stored row, so `lead` may already carry them (as a model form's
    instance does). Returns the fields that changed.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not editable by hand: {', '.join(sorted(unknown))}")

    with transaction.atomic():
        stored = Lead.objects.select_for_update().get(pk=lead.pk)
        email, phone, errors = identity_errors(
            email=changes.get("email", stored.email),
            phone=changes.get("phone", stored.phone),
        )
        if not (errors or email or phone or stored.external_id):
            errors["email"] = [_("Enter an email address or a phone number.")]
        if errors:
            raise ValidationError(errors)
        clean = {name: normalize_name(value) for name, value in changes.items()}
        clean["email"], clean["phone"] = email, phone

        updated = [
            name
            for name in EDITABLE_FIELDS
            if name in changes and clean[name] != getattr(stored, name)
        ]
        if not updated:
            return []

        for name in updated:
            setattr(stored, name, clean[name])
        stored.search_text = _search_text(stored)
        stored.score_stale = True
        stored.save(
            update_fields=[*updated, "search_text", "score_stale", "updated_at"]
        )
        transaction.on_commit(lambda lead_id=stored.pk: _announce(lead_id))

    for name in (*updated, "search_text", "score_stale", "updated_at"):
        setattr(lead, name, getattr(stored, name))
    logger.info("Lead %s edited by hand: %s", lead.pk, ", ".join(updated))
    return updated


def _locked(lead_id: int) -> Lead:
    return Lead.objects.select_for_update().get(pk=lead_id)


def _require(user, permission: str) -> None:
    if user is None or not user.has_perm(permission):
        raise PermissionDenied(_("You may not change this lead's stage."))


def _require_reason(reason_code: str, note: str) -> None:
    if reason_code not in ReasonCode.values:
        raise ValidationError({"reason_code": _("Choose a reason.")})
    if reason_code == ReasonCode.OTHER and not note.strip():
        raise ValidationError({"note": _("Say why, when the reason is Other.")})


def _stage_change(
    lead: Lead, *, to_level: str, action: str, by, reason_code: str = "", note: str = ""
) -> LevelChange:
    change = LevelChange.objects.create(
        lead=lead,
        from_level=lead.level,
        to_level=to_level,
        action=action,
        changed_by=by,
        reason_code=reason_code,
        reason=note.strip(),
        score=lead.score,
    )
    logger.info(
        "Lead %s %s by user %s: %s -> %s (%s)",
        lead.pk,
        action,
        getattr(by, "pk", None),
        lead.level,
        to_level,
        reason_code or "-",
    )
    return change


def _refuse_customer(lead: Lead) -> None:
    # A customer's story goes on in its won deal; taking it back to nurture
    # or out of the funnel would undo the sale without saying so.
    if lead.status == LeadStatus.CUSTOMER:
        raise ValidationError(_("The lead is a customer: reopen its deal first."))


@transaction.atomic
def lead_recycle(*, lead_id: int, by, reason_code: str, note: str = "") -> Lead:
    """Send a lead back to marketing's nurture, at IQL, with a coded reason.

    It earns a level again only with new activity.
    """
    _require(by, "leads.move_lead")
    _require_reason(reason_code, note)
    lead = _locked(lead_id)
    _refuse_customer(lead)

    _stage_change(
        lead,
        to_level=Level.IQL,
        action=StageAction.RECYCLE,
        by=by,
        reason_code=reason_code,
        note=note,
    )
    lead.level = Level.IQL
    lead.recycled_at = timezone.now()
    lead.save(update_fields=["level", "recycled_at", "updated_at"])

    transaction.on_commit(lambda: _announce(lead.pk))
    return lead


@transaction.atomic
def lead_disqualify(*, lead_id: int, by, reason_code: str, note: str = "") -> Lead:
    """Stop working a lead. Scoring goes on but never moves it."""
    _require(by, "leads.move_lead")
    _require_reason(reason_code, note)
    lead = _locked(lead_id)
    _refuse_customer(lead)
    if lead.status == LeadStatus.DISQUALIFIED:
        raise ValidationError(_("The lead is disqualified already."))

    _stage_change(
        lead,
        to_level=lead.level,
        action=StageAction.DISQUALIFY,
        by=by,
        reason_code=reason_code,
        note=note,
    )
    lead.status = LeadStatus.DISQUALIFIED
    lead.save(update_fields=["status", "updated_at"])
    return lead


@transaction.atomic
def lead_reopen(*, lead_id: int, by, note: str = "") -> Lead:
    _require(by, "leads.move_lead")
    lead = _locked(lead_id)
    if lead.status != LeadStatus.DISQUALIFIED:
        raise ValidationError(_("Only a disqualified lead can be reopened."))

    _stage_change(
        lead, to_level=lead.level, action=StageAction.REOPEN, by=by, note=note
    )
    lead.status = LeadStatus.OPEN
    lead.save(update_fields=["status", "updated_at"])

    transaction.on_commit(lambda: _announce(lead.pk))
    return lead


@transaction.atomic
def lead_move(
    *, lead_id: int, by, to_level: str, reason_code: str = "", note: str = ""
) -> Lead:
    """A person moves a lead to any level; backwards needs a coded reason."""
    _require(by, "leads.move_lead")
    if to_level not in Level.values:
        raise ValidationError({"to_level": _("Choose a level.")})
    lead = _locked(lead_id)
    backwards = Level.rank(to_level) < Level.rank(lead.level)
    if backwards:
        _require_reason(reason_code, note)
    if to_level == lead.level:
        return lead

    change = _stage_change(
        lead,
        to_level=to_level,
        action=StageAction.MOVE,
        by=by,
        reason_code=reason_code,
        note=note,
    )
    lead.level = to_level
    if backwards:
        lead.recycled_at = timezone.now()
    lead.save(update_fields=["level", "recycled_at", "updated_at"])
    _start_handoff([change])
    return lead


BANT_FIELDS = ("amount", "currency", "text", "date")


@transaction.atomic
def lead_bant_set(
    *,
    lead_id: int,
    criterion: str,
    confirmed: bool,
    by=None,
    amount: Decimal | None = None,
    currency: str = "",
    text: str = "",
    date: date_type | None = None,
) -> Bant | None:
    """Record what is known of one BANT criterion and rescore the lead.

    What a lead states never overwrites what sales confirmed. Returns None
    when a statement was ignored for that reason.
    """
    if criterion not in BantCriterion.values:
        raise ValidationError({"criterion": _("Unknown BANT criterion.")})
    if confirmed:
        _require(by, "leads.change_bant")
    lead = _locked(lead_id)
    current = Bant.objects.filter(lead=lead, criterion=criterion).first()
    if not confirmed and current and current.status == BantStatus.CONFIRMED:
        return None

    values = {
        "status": BantStatus.CONFIRMED if confirmed else BantStatus.STATED,
        "amount": amount,
        "currency": (currency or "").upper()[:3],
        "text": normalize_name(text)[:500],
        "date": date,
        "confirmed_by": by if confirmed else None,
        "updated_at": timezone.now(),
    }
    bant, _created = Bant.objects.update_or_create(
        lead=lead, criterion=criterion, defaults=values
    )
    Lead.objects.filter(pk=lead.pk).update(score_stale=True)

    transaction.on_commit(lambda: _announce(lead.pk))
    return bant


@transaction.atomic
def lead_mark_contacted(*, lead_id: int, at: datetime) -> None:
    """Record the first contact with a lead (a logged call, meeting or email)
    and its speed to lead. Later contacts change nothing."""
    lead = _locked(lead_id)
    if lead.first_contacted_at is not None:
        return

    start = lead.mql_at or lead.assigned_at
    if start and at < start:
        # Contact from before the hand-off (a back-dated call) is not what
        # the SLA waits for: the first contact after it stops the clock.
        return
    lead.first_contacted_at = at
    lead.time_to_contact = at - start if start else None
    lead.save(update_fields=["first_contacted_at", "time_to_contact", "updated_at"])
    logger.info("Lead %s first contacted", lead.pk)
