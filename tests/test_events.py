import threading
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from campaigns import events
from campaigns.models import (
    Attendance,
    Campaign,
    Event,
    EventRegistration,
    RegistrationSource,
    RegistrationStatus,
    WebForm,
)
from leads.models import Interaction, InteractionKind, Lead
from scoring.services import score_recompute

EVENT_PERMS = (
    "leads.view_lead",
    # People at the door see every registrant, not only leads they own.
    "leads.view_all_leads",
    "campaigns.view_event",
    "campaigns.change_eventregistration",
)
START = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.get_default_timezone())


@pytest.fixture
def campaign(db):
    return Campaign.objects.create(name="Hội thảo AI 2026", kind="seminar")


@pytest.fixture
def event(campaign):
    form = WebForm.objects.create(
        campaign=campaign, name="Seminar sign-up", key="seminar"
    )
    return Event.objects.create(
        campaign=campaign,
        name="AI for sales, Hà Nội",
        kind="seminar",
        starts_at=START,
        ends_at=START + timedelta(hours=3),
        venue="Lotte Center, Hà Nội",
        capacity=2,
        form=form,
    )


@pytest.fixture
def marketer(make_user):
    return make_user("mai", role="Marketer")


@pytest.fixture
def door(client, marketer):
    client.force_login(marketer)
    return client


def _register(event, make_lead, **fields):
    lead = make_lead(**fields)
    return events.event_register(event=event, lead=lead)


def _kinds(lead) -> list[str]:
    return sorted(lead.interactions.values_list("kind", flat=True))


# Registration ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_processed_submission_of_the_event_form_registers_the_lead(client, event):
    response = client.post(
        "/f/seminar/", {"email": "lan@example.vn", "full_name": "Phạm Thị Lan"}
    )

    assert response.status_code == 303
    lead = Lead.objects.get()
    registration = EventRegistration.objects.get()
    assert registration.lead == lead
    assert registration.status == RegistrationStatus.REGISTERED
    assert registration.source == RegistrationSource.FORM
    assert registration.submission is not None
    assert _kinds(lead) == ["event_registration", "form_submit"]
    registered = lead.interactions.get(kind="event_registration")
    assert registered.idempotency_key == f"event:{event.pk}:registration:{lead.pk}"
    assert registered.campaign == event.campaign
    # Rescored after commit: both interactions count.
    lead.refresh_from_db()
    assert "Event registration" in {line["label"] for line in lead.score_breakdown}


@pytest.mark.django_db(transaction=True)
def test_submitting_the_form_twice_registers_once(client, event):
    for _ in range(2):
        client.post("/f/seminar/", {"email": "lan@example.vn"})

    assert EventRegistration.objects.count() == 1
    assert Interaction.objects.filter(kind="event_registration").count() == 1
    assert Interaction.objects.filter(kind="form_submit").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_form_of_no_event_registers_nobody(client, web_form):
    client.post("/f/ebook/", {"email": "lan@example.vn"})

    assert Lead.objects.count() == 1
    assert EventRegistration.objects.count() == 0


def test_registrations_beyond_capacity_join_the_waitlist(event, make_lead):
    first = _register(event, make_lead, email="a@example.vn")
    second = _register(event, make_lead, email="b@example.vn")
    third = _register(event, make_lead, email="c@example.vn")

    assert [r.status for r in (first, second, third)] == [
        "registered",
        "registered",
        "waitlisted",
    ]
    counts = events.event_counts(event=event)
    assert (counts.registered, counts.waitlisted, counts.seats_left) == (2, 1, 0)
    waitlisted = third.lead.interactions.get(kind="event_registration")
    assert waitlisted.details["waitlisted"] is True


def test_an_event_without_capacity_has_no_waitlist(event, make_lead):
    event.capacity = None
    event.save()

    statuses = {
        _register(event, make_lead, email=f"p{i}@example.vn").status for i in range(5)
    }

    assert statuses == {"registered"}


def test_the_event_page_shows_the_waitlist_clearly(door, event, make_lead):
    for name in ("a", "b", "c"):
        _register(event, make_lead, email=f"{name}@example.vn")

    response = door.get(reverse("events:detail", args=[event.pk]))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Full: new registrations join the waitlist" in content
    assert content.count('badge text-bg-warning">Waitlist') == 1
    waitlist = door.get(
        reverse("events:detail", args=[event.pk]), {"status": "waitlisted"}
    )
    assert [r.lead.email for r in waitlist.context["registrations"]] == ["c@example.vn"]


def test_an_event_refuses_a_form_that_records_registrations_itself(event):
    event.form.interaction_kind = InteractionKind.EVENT_REGISTRATION
    event.form.save()

    with pytest.raises(ValidationError) as exc:
        event.full_clean()

    assert "form" in exc.value.message_dict


def test_an_event_needs_a_place_or_a_link_and_an_end_after_its_start(event):
    event.venue = ""
    event.ends_at = event.starts_at

    with pytest.raises(ValidationError) as exc:
        event.full_clean()

    assert set(exc.value.message_dict) == {"venue", "ends_at"}


# Pages -------------------------------------------------------------------


def test_event_pages_need_the_event_permission(client, make_user, event):
    client.force_login(make_user("rep", role="Sales rep"))

    assert client.get(reverse("events:list")).status_code == 403
    assert client.get(reverse("events:detail", args=[event.pk])).status_code == 403
    assert client.get(reverse("events:check_in", args=[event.pk])).status_code == 403


def test_the_event_list_searches_and_counts(door, event, make_lead):
    _register(event, make_lead, email="a@example.vn")
    Event.objects.create(
        campaign=event.campaign,
        name="Webinar: CRM basics",
        starts_at=START,
        ends_at=START + timedelta(hours=1),
        online_url="https://meet.example.com/crm",
    )

    response = door.get(reverse("events:list"), {"q": "sales"})

    assert [e.name for e in response.context["events"]] == [event.name]
    assert response.context["events"][0].registered_count == 1
    empty = door.get(reverse("events:list"), {"q": "nothing like it"})
    assert "No events match" in empty.content.decode()


def test_the_event_page_takes_a_fixed_number_of_queries(
    door, event, make_lead, django_assert_max_num_queries
):
    event.capacity = None
    event.save()
    for i in range(30):
        _register(event, make_lead, email=f"p{i}@example.vn")

    with django_assert_max_num_queries(12):
        response = door.get(reverse("events:detail", args=[event.pk]))

    assert len(response.context["registrations"]) == 30


def test_a_new_event_is_created_on_its_page(door, event):
    response = door.post(
        reverse("events:create"),
        {
            "campaign": event.campaign.pk,
            "name": "Exhibition booth",
            "kind": "exhibition",
            "starts_at": "2026-12-20T09:00",
            "ends_at": "2026-12-20T08:00",
            "venue": "SECC, TP.HCM",
        },
    )

    assert response.status_code == 200
    assert "The event must end after it starts." in response.content.decode()
    assert not Event.objects.filter(name="Exhibition booth").exists()


# Check-in ----------------------------------------------------------------


@pytest.fixture
def registered(event, make_lead):
    lan = _register(
        event,
        make_lead,
        email="lan@example.vn",
        phone="0912 345 678",
        full_name="Nguyễn Thị Lan",
    )
    _register(event, make_lead, email="binh@example.vn", full_name="Trần Văn Bình")
    return lan


@pytest.mark.parametrize("query", ["nguyen lan", "LAN@example.vn", "0912345678"])
def test_check_in_finds_people_by_name_email_or_phone(door, registered, query):
    response = door.get(
        reverse("events:check_in", args=[registered.event_id]), {"q": query}
    )

    assert [r.pk for r in response.context["registrations"]] == [registered.pk]


def test_a_nul_in_the_check_in_search_is_ignored(door, registered):
    """PostgreSQL refuses NUL in a string: it is stripped, not a 500."""
    response = door.get(
        reverse("events:check_in", args=[registered.event_id]), {"q": "l\x00an@"}
    )

    assert [r.pk for r in response.context["registrations"]] == [registered.pk]


def test_check_in_search_that_finds_nobody_says_so(door, registered):
    response = door.get(
        reverse("events:check_in", args=[registered.event_id]), {"q": "Hoàng"}
    )

    assert "Nobody registered matches" in response.content.decode()


def test_one_tap_checks_a_lead_in_and_records_the_attendance_once(
    door, registered, marketer
):
    url = reverse(
        "events:check_in_registration", args=[registered.event_id, registered.pk]
    )

    first = door.post(url, HTTP_HX_REQUEST="true")
    door.post(url, HTTP_HX_REQUEST="true")

    assert first.status_code == 200
    assert "1 of 2 here" in first.content.decode()
    registered.refresh_from_db()
    assert registered.attendance == Attendance.ATTENDED
    assert registered.checked_in_by == marketer
    assert registered.lead.interactions.filter(kind="event_attendance").count() == 1


def test_checking_in_without_htmx_goes_back_to_the_search(door, registered):
    url = reverse(
        "events:check_in_registration", args=[registered.event_id, registered.pk]
    )

    response = door.post(url, {"q": "lan"})

    assert response.status_code == 302
    assert response["Location"].endswith("/check-in/?q=lan")


def test_a_registration_of_another_event_is_not_found(door, registered, campaign):
    other = Event.objects.create(
        campaign=campaign,
        name="Other",
        starts_at=START,
        ends_at=START + timedelta(hours=1),
        venue="Đà Nẵng",
    )
    url = reverse("events:check_in_registration", args=[other.pk, registered.pk])

    assert door.post(url).status_code == 404
    registered.refresh_from_db()
    assert registered.attendance == Attendance.UNKNOWN


def test_checking_in_needs_the_permission(client, make_user, registered):
    client.force_login(make_user("viewer", perms=("campaigns.view_event",)))
    url = reverse(
        "events:check_in_registration", args=[registered.event_id, registered.pk]
    )

    assert client.post(url).status_code == 403


def test_a_waitlisted_lead_who_comes_takes_a_seat(event, make_lead):
    for name in ("a", "b"):
        _register(event, make_lead, email=f"{name}@example.vn")
    late = _register(event, make_lead, email="late@example.vn")

    events.registration_check_in(registration=late)

    late.refresh_from_db()
    assert (late.status, late.attendance) == ("registered", "attended")


# Attendance import -------------------------------------------------------


def _upload(door, event, text: str, *, encoding="utf-8"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("attendance.csv", text.encode(encoding), "text/csv")
    return door.post(
        reverse("events:import_attendance", args=[event.pk]), {"file": upload}
    )


def test_an_attendance_file_checks_people_in_and_adds_walk_ins(door, registered, event):
    text = (
        "\ufeffHọ tên;Email;Số điện thoại\n"
        "Nguyễn Thị Lan;LAN@example.vn;\n"
        "Walk In;;0987 654 321\n"
        "Nobody;not-an-email;\n"
    )

    response = _upload(door, event, text)

    assert response.status_code == 302
    lan = EventRegistration.objects.get(pk=registered.pk)
    assert lan.attendance == Attendance.ATTENDED
    walk_in = EventRegistration.objects.get(lead__phone="+84987654321")
    assert walk_in.source == RegistrationSource.IMPORT
    assert walk_in.attendance == Attendance.ATTENDED
    assert walk_in.lead.first_touch_campaign == event.campaign
    assert _kinds(walk_in.lead) == ["event_attendance"]
    # Rescored in one batch at the end.
    assert walk_in.lead.scored_at is not None
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages[0].startswith("2 people checked in (1 not registered before)")
    assert messages[1].startswith("Line 4 skipped")


def test_importing_the_same_file_again_changes_nothing(door, registered, event):
    text = "email,name\nlan@example.vn,Lan\nnew@example.vn,New Person\n"
    _upload(door, event, text)
    interactions = Interaction.objects.count()

    response = _upload(door, event, text)

    assert Interaction.objects.count() == interactions
    assert EventRegistration.objects.count() == 3
    # The first import's message is still queued: the last one is this one.
    message = [str(m) for m in response.wsgi_request._messages][-1]
    assert "0 people checked in" in message
    assert "2 already checked in" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,company\nLan,Co\n", "needs an email or a phone column"),
        ("", "The file is empty."),
    ],
)
def test_an_unreadable_attendance_file_is_refused(door, event, text, message):
    response = _upload(door, event, text or "\n")

    shown = [str(m) for m in response.wsgi_request._messages]
    assert any(message in m for m in shown)
    assert EventRegistration.objects.count() == 0


def test_an_attendance_file_that_is_not_utf8_is_refused(door, event):
    response = _upload(door, event, "email\nlan@example.vn\nTrần\n", encoding="utf-16")

    shown = [str(m) for m in response.wsgi_request._messages]
    assert shown == ["The file is not UTF-8 text."]


# No-shows ----------------------------------------------------------------


def test_registered_leads_who_did_not_come_become_no_shows(event, make_lead):
    came = _register(event, make_lead, email="came@example.vn")
    stayed_home = _register(event, make_lead, email="home@example.vn")
    waitlisted = _register(event, make_lead, email="wait@example.vn")
    events.registration_check_in(registration=came, at=START)

    with time_machine.travel(event.ends_at + timedelta(hours=1), tick=False):
        assert events.event_no_shows_mark() == 0
    with time_machine.travel(event.ends_at + timedelta(hours=13), tick=False):
        marked = events.event_no_shows_mark()
        again = events.event_no_shows_mark()

    assert (marked, again) == (1, 0)
    attendance = dict(
        EventRegistration.objects.values_list("lead__email", "attendance")
    )
    assert attendance == {
        "came@example.vn": "attended",
        "home@example.vn": "no_show",
        "wait@example.vn": "unknown",
    }
    no_show = stayed_home.lead.interactions.get(kind="event_no_show")
    assert no_show.occurred_at == event.ends_at
    assert no_show.campaign == event.campaign
    assert not waitlisted.lead.interactions.filter(kind="event_no_show").exists()
    event.refresh_from_db()
    assert event.no_shows_marked_at is not None


# Transactional: the bulk scorer's scratch table empties at each commit, and
# this lead is scored twice.
@pytest.mark.django_db(transaction=True)
def test_a_no_show_costs_points(event, make_lead):
    with time_machine.travel(START - timedelta(days=1), tick=False):
        registration = _register(event, make_lead, email="home@example.vn")
        before = score_recompute(lead_id=registration.lead_id).engagement_score

    with time_machine.travel(event.ends_at + timedelta(hours=13), tick=False):
        events.event_no_shows_mark()
        after = Lead.objects.get(pk=registration.lead_id)

    assert after.engagement_score < before
    assert "Event no-show" in {line["label"] for line in after.score_breakdown}


def test_the_no_show_task_runs_from_beat(event, make_lead):
    from campaigns.tasks import mark_event_no_shows

    _register(event, make_lead, email="home@example.vn")

    with time_machine.travel(event.ends_at + timedelta(days=1), tick=False):
        assert mark_event_no_shows.apply().get() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_never_take_more_seats_than_there_are(
    event, make_lead
):
    leads = [make_lead(email=f"race{n}@example.vn") for n in range(10)]
    barrier = threading.Barrier(len(leads))
    errors: list[BaseException] = []

    def register(lead) -> None:
        try:
            barrier.wait(timeout=10)
            events.event_register(event=event, lead=lead)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(lead,)) for lead in leads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    counts = events.event_counts(event=event)
    assert (counts.registered, counts.waitlisted) == (2, 8)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_door_checks_a_person_in_on_a_phone(
    chromium_browser, live_server, event, make_lead, make_user
):
    from playwright.sync_api import expect

    make_user("door", perms=EVENT_PERMS)
    _register(event, make_lead, email="lan@example.vn", full_name="Nguyễn Thị Lan")
    _register(event, make_lead, email="binh@example.vn", full_name="Trần Văn Bình")
    context = chromium_browser.new_context(
        locale="en-US", viewport={"width": 390, "height": 844}, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "door")
        page.fill("input[name=password]", "a-long-test-password")
        page.click("main form button[type=submit]")
        page.goto(f"{live_server.url}/events/{event.pk}/check-in/")

        page.fill("#check-in-q", "nguyen")
        results = page.locator("#check-in-results")
        expect(results).not_to_contain_text("Trần Văn Bình")
        expect(results).to_contain_text("Nguyễn Thị Lan")
        page.get_by_role("button", name="Check in").tap()

        expect(results).to_contain_text("Here")
        expect(page.locator("#check-in-count")).to_contain_text("1 of 2 here")
        # Nothing wider than the phone's screen.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
    finally:
        context.close()

    assert EventRegistration.objects.get(lead__email="lan@example.vn").attendance == (
        Attendance.ATTENDED
    )


def test_a_stranger_is_sent_to_the_login_even_for_a_missing_event(client):
    response = client.get(reverse("events:detail", args=[999]))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_raising_the_capacity_seats_the_waitlist_in_order(door, event, make_lead):
    for name in ("a", "b", "c", "d", "e"):
        _register(event, make_lead, email=f"{name}@example.vn")

    response = door.post(
        reverse("events:update", args=[event.pk]),
        {
            "campaign": event.campaign.pk,
            "name": event.name,
            "kind": event.kind,
            "starts_at": "2026-11-20T09:00",
            "ends_at": "2026-11-20T12:00",
            "venue": event.venue,
            "capacity": 4,
            "form": event.form.pk,
        },
        follow=True,
    )

    assert "2 people moved from the waitlist to a seat." in response.content.decode()
    statuses = dict(EventRegistration.objects.values_list("lead__email", "status"))
    assert [statuses[f"{name}@example.vn"] for name in "abcde"] == [
        "registered",
        "registered",
        "registered",
        "registered",
        "waitlisted",
    ]


def test_a_file_with_too_many_rows_records_nothing(event, monkeypatch):
    monkeypatch.setattr(events, "IMPORT_MAX_ROWS", 2)
    text = "email\na@example.vn\nb@example.vn\nc@example.vn\n"

    with pytest.raises(events.AttendanceFileError):
        events.event_attendance_import(event=event, content=text.encode())

    assert Lead.objects.count() == 0
    assert EventRegistration.objects.count() == 0
