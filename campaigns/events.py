"""Events: registration, check-in, attendance import and no-shows.

Every registration, attendance and no-show is also an interaction recorded
through `leads.services.lead_ingest`, with an idempotency key of the event
and the lead, so each happens at most once per person and event and the
lead is rescored.
"""

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from leads.models import Channel, InteractionKind, Lead
from leads.normalize import storable_text
from leads.selectors import lead_search
from leads.services import InteractionData, LeadData, lead_ingest

from .models import (
    Attendance,
    Event,
    EventRegistration,
    RegistrationSource,
    RegistrationStatus,
    Submission,
)

logger = logging.getLogger(__name__)

# An attendance file is read in the request: big enough for an exhibition,
# small enough to answer within a request's time.
IMPORT_MAX_BYTES = 2 * 1024 * 1024
IMPORT_MAX_ROWS = 10_000
IMPORT_COLUMNS = {
    "email": ("email", "e-mail", "email address"),
    "phone": ("phone", "phone number", "mobile", "số điện thoại", "điện thoại"),
    "full_name": ("full_name", "name", "full name", "họ tên", "họ và tên"),
}


# Reads -------------------------------------------------------------------


def event_list(*, query: str = "", when: str = "") -> QuerySet[Event]:
    """Events with their seat counts, newest first, narrowed by name and by
    upcoming or past."""
    # Meta.ordering does not apply to a query with aggregates: it is given.
    events = Event.objects.select_related("campaign").order_by("-starts_at", "-id")
    events = events.annotate(
        registered_count=Count(
            "registrations",
            filter=Q(registrations__status=RegistrationStatus.REGISTERED),
        ),
        waitlisted_count=Count(
            "registrations",
            filter=Q(registrations__status=RegistrationStatus.WAITLISTED),
        ),
        attended_count=Count(
            "registrations",
            filter=Q(registrations__attendance=Attendance.ATTENDED),
        ),
    )
    for term in storable_text(query).split():
        events = events.filter(
            Q(name__icontains=term) | Q(campaign__name__icontains=term)
        )
    now = timezone.now()
    if when == "upcoming":
        events = events.filter(ends_at__gt=now).order_by("starts_at", "id")
    elif when == "past":
        events = events.filter(ends_at__lte=now)
    return events


@dataclass(frozen=True)
class EventCounts:
    registered: int
    waitlisted: int
    attended: int
    no_show: int
    capacity: int | None

    @property
    def seats_left(self) -> int | None:
        if self.capacity is None:
            return None
        return max(self.capacity - self.registered, 0)


def event_counts(*, event: Event) -> EventCounts:
    counts = event.registrations.aggregate(
        registered=Count("id", filter=Q(status=RegistrationStatus.REGISTERED)),
        waitlisted=Count("id", filter=Q(status=RegistrationStatus.WAITLISTED)),
        attended=Count("id", filter=Q(attendance=Attendance.ATTENDED)),
        no_show=Count("id", filter=Q(attendance=Attendance.NO_SHOW)),
    )
    return EventCounts(capacity=event.capacity, **counts)


def registration_list(
    *, event: Event, user, query: str = "", status: str = ""
) -> QuerySet[EventRegistration]:
    """An event's registrations whose leads the user may see, searched like
    the leads list (name, email, phone or company; diacritics ignored)."""
    leads = Lead.objects.visible_to(user)
    if query.strip():
        leads = lead_search(leads, query)
    registrations = event.registrations.filter(lead__in=leads).select_related("lead")
    if status in RegistrationStatus.values:
        registrations = registrations.filter(status=status)
    elif status in Attendance.values:
        registrations = registrations.filter(attendance=status)
    return registrations.order_by("registered_at", "id")


# Registration ------------------------------------------------------------


def forms_with_events(form_ids: Iterable[int]) -> set[int]:
    """Which of these forms register people for an event."""
    return set(
        Event.objects.filter(form_id__in=list(form_ids)).values_list(
            "form_id", flat=True
        )
    )


def registration_from_submission(
    *, submission: Submission, lead: Lead
) -> EventRegistration | None:
    """The capture path's hook: a processed submission of an event's form
    registers its lead. Returns None when the form belongs to no event."""
    event = Event.objects.filter(form_id=submission.form_id).first()
    if event is None:
        return None
    return event_register(
        event=event,
        lead=lead,
        source=RegistrationSource.FORM,
        submission=submission,
        at=submission.received_at,
    )


def event_register(
    *,
    event: Event,
    lead: Lead,
    source: str = RegistrationSource.FORM,
    submission: Submission | None = None,
    at: datetime | None = None,
) -> EventRegistration:
    """Give a lead a seat, or a place on the waitlist when the seats are
    taken. Registering twice changes nothing."""
    at = at or timezone.now()
    with transaction.atomic():
        # The event's row lock serialises registrations, so two people
        # cannot both take the last seat.
        event = Event.objects.select_for_update().get(pk=event.pk)
        registration = EventRegistration.objects.filter(event=event, lead=lead).first()
        if registration is not None:
            return registration

        taken = event.registrations.filter(status=RegistrationStatus.REGISTERED).count()
        full = event.capacity is not None and taken >= event.capacity
        registration = EventRegistration.objects.create(
            event=event,
            lead=lead,
            status=RegistrationStatus.WAITLISTED
            if full
            else RegistrationStatus.REGISTERED,
            source=source,
            submission=submission,
            registered_at=at,
        )
        _record(
            registration,
            kind=InteractionKind.EVENT_REGISTRATION,
            key="registration",
            at=at,
            waitlisted=full,
        )

    logger.info(
        "Lead %s %s for event %s",
        lead.pk,
        "waitlisted" if full else "registered",
        event.pk,
    )
    return registration


def event_promote_waitlist(*, event: Event) -> int:
    """Give free seats (after a capacity increase) to the waitlist, first
    come first served; returns how many were promoted."""
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=event.pk)
        waitlist = event.registrations.filter(status=RegistrationStatus.WAITLISTED)
        if event.capacity is None:
            promoted = list(waitlist.values_list("pk", flat=True))
        else:
            taken = event.registrations.filter(
                status=RegistrationStatus.REGISTERED
            ).count()
            free = max(event.capacity - taken, 0)
            promoted = list(
                waitlist.order_by("registered_at", "id").values_list("pk", flat=True)[
                    :free
                ]
            )
        EventRegistration.objects.filter(pk__in=promoted).update(
            status=RegistrationStatus.REGISTERED
        )

    if promoted:
        logger.info("Event %s: %s promoted from the waitlist", event.pk, len(promoted))
    return len(promoted)


def _record(
    registration: EventRegistration,
    *,
    kind: str,
    key: str,
    at: datetime,
    announce: bool = True,
    touch: bool = True,
    **details: object,
) -> None:
    """Record one event interaction of the registration's lead through the
    ingest service; with `touch` the event's campaign becomes the lead's
    last touch (a no-show is no touch)."""
    lead = registration.lead
    event = registration.event
    lead_ingest(
        data=LeadData(
            email=lead.email,
            phone=lead.phone,
            external_id=lead.external_id,
            campaign_id=event.campaign_id if touch else None,
        ),
        interactions=[
            InteractionData(
                kind=kind,
                channel=Channel.EVENT,
                occurred_at=at,
                subject=event.name,
                campaign_id=event.campaign_id,
                details={"event": event.pk, **details},
                idempotency_key=f"event:{event.pk}:{key}:{lead.pk}",
            )
        ],
        announce=announce,
    )


# Attendance ---------------------------------------------------------------


def registration_check_in(
    *, registration: EventRegistration, user=None, at: datetime | None = None
) -> EventRegistration:
    """Mark a registered (or waitlisted) lead as there. Checking in twice
    changes nothing. A late check-in of a no-show marks them attended; the
    no-show stays in the append-only interaction log."""
    at = at or timezone.now()
    with transaction.atomic():
        registration = (
            EventRegistration.objects.select_for_update()
            .select_related("event", "lead")
            .get(pk=registration.pk)
        )
        if registration.attendance == Attendance.ATTENDED:
            return registration

        _attend(registration, user=user, at=at)

    logger.info(
        "Lead %s checked in at event %s", registration.lead_id, registration.event_id
    )
    return registration


def _attend(
    registration: EventRegistration, *, user, at: datetime, announce: bool = True
) -> None:
    registration.attendance = Attendance.ATTENDED
    registration.attended_at = at
    registration.checked_in_by = user
    # Whoever came had a seat, whatever the waitlist said.
    registration.status = RegistrationStatus.REGISTERED
    registration.save(
        update_fields=["attendance", "attended_at", "checked_in_by", "status"]
    )
    _record(
        registration,
        kind=InteractionKind.EVENT_ATTENDANCE,
        key="attended",
        at=at,
        announce=announce,
    )


@dataclass
class AttendanceReport:
    checked_in: int = 0
    already: int = 0
    walk_ins: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    lead_ids: set[int] = field(default_factory=set)

    @property
    def rows(self) -> int:
        return self.checked_in + self.already + len(self.skipped)


class AttendanceFileError(ValueError):
    """The file cannot be read at all (as opposed to a bad row)."""


def event_attendance_import(
    *, event: Event, content: bytes, user=None
) -> AttendanceReport:
    """Mark the people in an attendance CSV (email, phone, name columns) as
    there; people who never registered (walk-ins) become leads with a seat.

    Each row goes through the ingest service; a bad row is skipped and
    reported by its line number, and the leads are rescored in one batch at
    the end. Importing a file again changes nothing.
    """
    from scoring.services import score_recompute_many

    # Read whole before any row is recorded: a file refused halfway
    # would leave half an import behind.
    rows = list(_attendance_rows(content))
    report = AttendanceReport()
    for line, values in rows:
        try:
            _import_row(event, values, user=user, report=report)
        except ValidationError as exc:
            report.skipped.append((line, " ".join(exc.messages)))

    score_recompute_many(lead_ids=sorted(report.lead_ids))
    logger.info(
        "Attendance import for event %s: %s checked in, %s already, %s skipped",
        event.pk,
        report.checked_in,
        report.already,
        len(report.skipped),
    )
    return report


def _attendance_rows(content: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    if len(content) > IMPORT_MAX_BYTES:
        raise AttendanceFileError(_("The file is larger than 2 MB."))
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AttendanceFileError(_("The file is not UTF-8 text.")) from exc

    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise AttendanceFileError(_("The file is empty."))
    columns = _attendance_columns(header)

    for count, row in enumerate(reader, start=1):
        if count > IMPORT_MAX_ROWS:
            raise AttendanceFileError(
                _("The file has more than %(rows)s rows.") % {"rows": IMPORT_MAX_ROWS}
            )
        if not any(cell.strip() for cell in row):
            continue
        yield (
            # The line a row ends on: a quoted cell may hold line breaks.
            reader.line_num,
            {
                name: row[index].strip() if index < len(row) else ""
                for name, index in columns.items()
            },
        )


def _attendance_columns(header: Iterable[str]) -> dict[str, int]:
    names = [cell.strip().lower() for cell in header]
    columns = {}
    for field_name, aliases in IMPORT_COLUMNS.items():
        for index, name in enumerate(names):
            if name in aliases:
                columns[field_name] = index
                break
    if "email" not in columns and "phone" not in columns:
        raise AttendanceFileError(_("The file needs an email or a phone column."))
    return columns


def _import_row(
    event: Event, values: dict[str, str], *, user, report: AttendanceReport
) -> None:
    with transaction.atomic():
        result = lead_ingest(
            data=LeadData(
                email=values.get("email", ""),
                phone=values.get("phone", ""),
                full_name=values.get("full_name", ""),
                campaign_id=event.campaign_id,
            ),
            announce=False,
        )
        lead = result.lead
        registration = EventRegistration.objects.filter(event=event, lead=lead).first()
        if registration is None:
            registration = EventRegistration.objects.create(
                event=event,
                lead=lead,
                source=RegistrationSource.IMPORT,
                registered_at=min(event.starts_at, timezone.now()),
            )
            report.walk_ins += 1
        registration.event = event
        registration.lead = lead
        if registration.attendance == Attendance.ATTENDED:
            report.already += 1
            return

        # The file says who came, not when: the event's start stands in.
        _attend(
            registration,
            user=user,
            at=min(event.starts_at, timezone.now()),
            announce=False,
        )
    report.checked_in += 1
    report.lead_ids.add(lead.pk)


# No-shows -----------------------------------------------------------------


def no_show_cutoff(now: datetime) -> datetime:
    """Events that ended before this are settled: the attendance import has
    had time to arrive."""
    return now - timedelta(hours=settings.LEADCRM["EVENT_NO_SHOW_AFTER_HOURS"])


def event_no_shows_mark(*, now: datetime | None = None) -> int:
    """Mark the registered leads who did not come to an event that is over
    as no-shows, event by event; returns how many were marked."""
    now = now or timezone.now()
    events = list(
        Event.objects.filter(
            no_shows_marked_at__isnull=True, ends_at__lte=no_show_cutoff(now)
        )
        .order_by("ends_at")
        .values_list("pk", flat=True)
    )
    return sum(_mark_event_no_shows(event_id, now=now) for event_id in events)


def _mark_event_no_shows(event_id: int, *, now: datetime) -> int:
    from scoring.services import score_recompute_many

    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=event_id)
        if event.no_shows_marked_at is not None:
            return 0
        absent = list(
            event.registrations.select_for_update()
            .filter(status=RegistrationStatus.REGISTERED, attendance=Attendance.UNKNOWN)
            .select_related("lead", "event")
        )
        for registration in absent:
            registration.attendance = Attendance.NO_SHOW
            _record(
                registration,
                kind=InteractionKind.EVENT_NO_SHOW,
                key="no_show",
                at=event.ends_at,
                announce=False,
                touch=False,
            )
        EventRegistration.objects.filter(pk__in=[r.pk for r in absent]).update(
            attendance=Attendance.NO_SHOW
        )
        event.no_shows_marked_at = now
        event.save(update_fields=["no_shows_marked_at"])

    # One batch for the event rather than a task per lead; a crash here
    # leaves the leads stale for the scoring sweeper.
    score_recompute_many(lead_ids=[r.lead_id for r in absent])
    logger.info("Event %s: %s no-shows recorded", event_id, len(absent))
    return len(absent)
