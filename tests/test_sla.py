from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from leads.assignment import lead_assign
from leads.handoff import lead_accept, lead_mark_contacted, sla_escalate
from leads.models import Assignment, Lead, Notification
from leads.sla import SlaPolicy, add_business_hours, business_time_between
from tests.handoff_helpers import fast_passwords, make_mql, make_team  # noqa: F401

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
# Friday 4 December 2026, 15:00 in Ho Chi Minh City.
FRIDAY_3PM = datetime(2026, 12, 4, 15, 0, tzinfo=HCM)
MONDAY = date(2026, 12, 7)


def _policy(**changes) -> SlaPolicy:
    values = {
        "time_zone": HCM,
        "workdays": frozenset(range(5)),
        "day_start": time(8),
        "day_end": time(17, 30),
        "holidays": frozenset(),
        "accept_hours": 4,
        "contact_hours": 8,
        "reassign_on_breach": False,
    }
    return SlaPolicy(**{**values, **changes})


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), HCM)


def test_business_hours_skip_the_weekend():
    policy = _policy()

    assert add_business_hours(FRIDAY_3PM, 4, policy) == _at(MONDAY, 9, 30)
    assert add_business_hours(FRIDAY_3PM, 2, policy) == _at(date(2026, 12, 4), 17)
    # Outside working hours the clock starts at the next opening.
    saturday = datetime(2026, 12, 5, 10, tzinfo=HCM)
    assert add_business_hours(saturday, 1, policy) == _at(MONDAY, 9)
    assert business_time_between(FRIDAY_3PM, _at(MONDAY, 9, 30), policy) == timedelta(
        hours=4
    )


def test_holidays_and_other_time_zones_are_respected():
    policy = _policy(holidays=frozenset({MONDAY}))
    utc_friday = FRIDAY_3PM.astimezone(ZoneInfo("UTC"))

    due = add_business_hours(utc_friday, 4, policy)

    assert due == _at(MONDAY + timedelta(days=1), 9, 30)


def test_a_policy_without_working_days_is_refused():
    with pytest.raises(ValueError):
        add_business_hours(FRIDAY_3PM, 1, _policy(workdays=frozenset()))


@pytest.fixture
def friday_lead(make_user, make_lead, django_capture_on_commit_callbacks):
    team, reps = make_team(make_user, "north")
    with time_machine.travel(FRIDAY_3PM, tick=False):
        lead = make_mql(make_lead, "mai@example.vn")
        with django_capture_on_commit_callbacks(execute=True):
            lead_assign(lead_id=lead.pk)
    lead.refresh_from_db()
    return lead, team, reps


def _escalate_at(moment: datetime, capture) -> int:
    with time_machine.travel(moment, tick=False), capture(execute=True):
        return sla_escalate()


@pytest.mark.django_db
def test_an_accept_breach_over_the_weekend_is_escalated_once_on_monday(
    friday_lead, django_capture_on_commit_callbacks
):
    lead, team, (an, _binh) = friday_lead
    capture = django_capture_on_commit_callbacks

    saturday = _escalate_at(datetime(2026, 12, 5, 12, tzinfo=HCM), capture)
    just_before = _escalate_at(_at(MONDAY, 9, 29), capture)
    just_after = _escalate_at(_at(MONDAY, 9, 31), capture)
    again = _escalate_at(_at(MONDAY, 11), capture)

    assert lead.accept_due_at == _at(MONDAY, 9, 30)
    assert lead.contact_due_at == _at(MONDAY, 13, 30)
    assert (saturday, just_before, just_after, again) == (0, 0, 1, 0)
    breach = Notification.objects.get(kind="accept_breach")
    assert (breach.user, breach.lead) == (team.manager, lead)
    lead.refresh_from_db()
    assert lead.owner == an  # reassigning on breach is off by default
    assert lead.accept_breached(_at(MONDAY, 10))


@pytest.mark.django_db
def test_a_contact_breach_is_escalated_too(
    friday_lead, django_capture_on_commit_callbacks
):
    lead, team, (an, _binh) = friday_lead
    with time_machine.travel(_at(MONDAY, 9), tick=False):
        lead_accept(lead_id=lead.pk, by=an)

    before = _escalate_at(_at(MONDAY, 13, 29), django_capture_on_commit_callbacks)
    after = _escalate_at(_at(MONDAY, 13, 31), django_capture_on_commit_callbacks)

    assert (before, after) == (0, 1)
    assert Notification.objects.filter(kind="contact_breach", user=team.manager).count()
    assert not Notification.objects.filter(kind="accept_breach").exists()


@pytest.mark.django_db
def test_a_breach_can_move_the_lead_to_the_next_rep(
    friday_lead, django_capture_on_commit_callbacks, settings
):
    lead, team, (an, binh) = friday_lead
    settings.LEADCRM = {
        **settings.LEADCRM,
        "SLA": {**settings.LEADCRM["SLA"], "REASSIGN_ON_BREACH": True},
    }

    escalated = _escalate_at(_at(MONDAY, 10), django_capture_on_commit_callbacks)

    lead.refresh_from_db()
    assert escalated == 1
    assert lead.owner == binh
    assert lead.accept_due_at == _at(MONDAY, 14)
    assert Assignment.objects.filter(lead=lead).first().method == "escalation"
    assert Notification.objects.filter(user=binh, kind="assigned").count() == 1
    assert Notification.objects.filter(user=team.manager, kind="accept_breach").count()


@pytest.mark.django_db
def test_speed_to_lead_is_recorded_on_accept_and_first_contact(friday_lead):
    lead, _team, (an, _binh) = friday_lead
    Lead.objects.filter(pk=lead.pk).update(mql_at=FRIDAY_3PM)

    with time_machine.travel(_at(MONDAY, 9), tick=False):
        lead_accept(lead_id=lead.pk, by=an)
    lead_mark_contacted(lead_id=lead.pk, at=_at(MONDAY, 10))
    lead_mark_contacted(lead_id=lead.pk, at=_at(MONDAY, 16))

    lead.refresh_from_db()
    assert lead.time_to_accept == timedelta(days=2, hours=18)
    assert lead.first_contacted_at == _at(MONDAY, 10)
    assert lead.time_to_contact == timedelta(days=2, hours=19)
    assert not lead.accept_breached() and not lead.contact_breached()
