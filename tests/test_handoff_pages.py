import re
from datetime import timedelta
from io import StringIO

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.assignment import give, lead_assign
from leads.models import Lead, LevelChange, Notification
from tests.handoff_helpers import fast_passwords, make_mql, make_team  # noqa: F401

pytestmark = pytest.mark.django_db

INBOX = reverse("sales:inbox")
QUEUE = reverse("sales:queue")
TEAM = reverse("sales:team")


@pytest.fixture
def north(make_user):
    team, reps = make_team(make_user, "north")
    return team, reps


def _assigned(make_lead, rep, team, email, **fields) -> Lead:
    lead = make_mql(make_lead, email, **fields)
    give(lead, rep, team, method="manual", now=timezone.now())
    lead.refresh_from_db()
    return lead


def _accepted(make_lead, rep, team, email, **fields) -> Lead:
    lead = _assigned(make_lead, rep, team, email, **fields)
    Lead.objects.filter(pk=lead.pk).update(accepted_at=timezone.now())
    return lead


def test_the_inbox_lists_the_reps_leads_with_their_sla(client, north, make_lead):
    team, (an, binh) = north
    lead = _assigned(make_lead, an, team, "mai@example.vn", full_name="Trần Thị Mai")
    late = _assigned(make_lead, an, team, "late@example.vn", full_name="Lê Văn Muộn")
    Lead.objects.filter(pk=late.pk).update(
        accept_due_at=timezone.now() - timedelta(minutes=1)
    )
    _assigned(make_lead, binh, team, "other@example.vn")
    client.force_login(an)

    response = client.get(INBOX)

    assert response.status_code == 200
    assert list(response.context["leads"]) == [late, lead]
    html = response.content.decode()
    assert "Trần Thị Mai" in html
    assert 'data-sla="accept-breached"' in html
    assert 'data-sla="accept-due"' in html
    assert reverse("sales:accept", args=[lead.pk]) in html


def test_an_empty_inbox_says_so(client, north):
    _team, (an, _binh) = north
    client.force_login(an)

    assert "No leads are waiting for you" in client.get(INBOX).content.decode()


def test_accepting_from_the_inbox_moves_the_lead_to_the_queue(client, north, make_lead):
    team, (an, _binh) = north
    lead = _assigned(make_lead, an, team, "mai@example.vn")
    client.force_login(an)

    response = client.post(
        reverse("sales:accept", args=[lead.pk]), {"next": INBOX}, follow=True
    )
    again = client.post(reverse("sales:accept", args=[lead.pk]), follow=True)

    assert response.redirect_chain == [(INBOX, 302)]
    assert list(response.context["leads"]) == []
    assert "The lead is accepted already." in again.content.decode()
    lead.refresh_from_db()
    assert lead.accepted_at is not None and lead.time_to_accept is not None
    assert list(client.get(QUEUE).context["leads"]) == [lead]


@pytest.mark.parametrize(
    ("outcome", "level", "status"),
    [("recycle", "iql", "open"), ("disqualify", "mql", "disqualified")],
)
def test_rejecting_hands_the_lead_back_with_its_reason(
    client, north, make_lead, outcome, level, status
):
    team, (an, _binh) = north
    lead = _assigned(make_lead, an, team, "mai@example.vn")
    client.force_login(an)

    response = client.post(
        reverse("sales:reject", args=[lead.pk]),
        {"reason_code": "no_budget", "outcome": outcome, "note": "Next year"},
    )

    assert response.status_code == 302
    lead.refresh_from_db()
    assert (lead.level, lead.status, lead.owner) == (level, status, None)
    change = LevelChange.objects.filter(lead=lead).first()
    assert (change.reason_code, change.reason, change.changed_by) == (
        "no_budget",
        "Next year",
        an,
    )
    # Back with marketing: the rep no longer sees it.
    assert client.get(lead.get_absolute_url()).status_code == 404


def test_the_inbox_opens_a_reject_form_on_demand(client, north, make_lead):
    team, (an, binh) = north
    lead = _assigned(make_lead, an, team, "mai@example.vn")
    url = reverse("sales:reject", args=[lead.pk])
    client.force_login(an)

    inbox = client.get(INBOX).content.decode()
    inline = client.get(url, {"next": INBOX}, headers={"HX-Request": "true"})
    page = client.get(url, {"next": INBOX})
    client.force_login(binh)
    outsider = client.get(url, headers={"HX-Request": "true"})

    # The inbox carries a link to the form, not fifty forms.
    assert f'hx-get="{url}?next=' in inbox and 'name="reason_code"' not in inbox
    assert 'name="reason_code"' in inline.content.decode()
    assert f'name="next" value="{INBOX}"' in inline.content.decode()
    assert "<html" not in inline.content.decode()
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert 'name="reason_code"' in page.content.decode()
    assert outsider.status_code == 404


def test_a_reject_needs_a_reason_and_a_note_for_other(client, north, make_lead):
    team, (an, _binh) = north
    lead = _assigned(make_lead, an, team, "mai@example.vn")
    client.force_login(an)

    missing = client.post(
        reverse("sales:reject", args=[lead.pk]), {"outcome": "recycle"}
    )
    other = client.post(
        reverse("sales:reject", args=[lead.pk]),
        {"reason_code": "other", "outcome": "recycle", "note": " "},
    )
    not_allowed = client.post(
        reverse("sales:reject", args=[lead.pk]),
        {"reason_code": "not_now", "outcome": "recycle"},
    )

    assert missing.status_code == other.status_code == not_allowed.status_code == 400
    assert missing.context["form"].errors["reason_code"] == ["This field is required."]
    assert other.context["form"].errors["note"] == [
        "Say why, when the reason is Other."
    ]
    assert "reason_code" in not_allowed.context["form"].errors
    lead.refresh_from_db()
    assert (lead.owner, lead.level) == (an, "mql")


def test_the_queue_orders_by_score_then_temperature_and_filters(
    client, north, make_lead
):
    team, (an, _binh) = north
    cold = _accepted(make_lead, an, team, "cold@x.vn")
    hot = _accepted(make_lead, an, team, "hot@x.vn")
    best = _accepted(make_lead, an, team, "best@x.vn")
    Lead.objects.filter(pk=cold.pk).update(score=70, temperature="cold")
    Lead.objects.filter(pk=hot.pk).update(score=70, temperature="hot", level="sql")
    Lead.objects.filter(pk=best.pk).update(score=90, temperature="warm")
    _assigned(make_lead, an, team, "not-accepted@x.vn")
    client.force_login(an)

    def queue(**params):
        return [lead.pk for lead in client.get(QUEUE, params).context["leads"]]

    assert queue() == [best.pk, hot.pk, cold.pk]
    assert queue(level="sql") == [hot.pk]
    assert queue(temperature="cold") == [cold.pk]
    assert queue(sla="breached") == []
    assert queue(sla="on_time") == [best.pk, hot.pk, cold.pk]
    assert queue(q="best") == [best.pk]
    assert (
        "No leads match these filters."
        in client.get(QUEUE, {"level": "sql", "temperature": "cold"}).content.decode()
    )


def test_a_manager_sees_the_teams_queue_and_filters_by_rep(client, north, make_lead):
    team, (an, binh) = north
    mine = _accepted(make_lead, an, team, "a@x.vn")
    theirs = _accepted(make_lead, binh, team, "b@x.vn")
    client.force_login(team.manager)

    everyone = {lead.pk for lead in client.get(QUEUE).context["leads"]}
    binhs = [lead.pk for lead in client.get(QUEUE, {"owner": binh.pk}).context["leads"]]

    assert everyone == {mine.pk, theirs.pk}
    assert binhs == [theirs.pk]


def _queries_for(client, url, django_assert_num_queries, count):
    with django_assert_num_queries(count):
        response = client.get(url)
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("url", [INBOX, QUEUE, TEAM])
def test_the_hand_off_pages_run_the_same_queries_for_3_or_30_leads(
    client, north, make_lead, django_assert_num_queries, url
):
    team, (an, _binh) = north
    user = team.manager if url == TEAM else an

    def fill(start, stop):
        for i in range(start, stop):
            make = _assigned if url in (INBOX, TEAM) else _accepted
            make(make_lead, an, team, f"l{i}@x.vn")

    client.force_login(user)
    fill(0, 3)
    # Session, user, two for permissions, count, page; the manager's board
    # also reads the reps for its filter and reassign form.
    expected = 7 if url == TEAM else 6
    small = _queries_for(client, url, django_assert_num_queries, expected)
    fill(3, 30)
    large = _queries_for(client, url, django_assert_num_queries, expected)

    assert len(small.context["leads"]) == 3
    assert len(large.context["leads"]) == 30


def test_the_team_board_reassigns_ticked_leads(
    client, north, make_lead, django_capture_on_commit_callbacks
):
    team, (an, binh) = north
    leads = [_assigned(make_lead, an, team, f"l{i}@x.vn") for i in range(3)]
    client.force_login(team.manager)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("sales:reassign_many"),
            {"rep": binh.pk, "leads": [leads[0].pk, leads[1].pk]},
            follow=True,
        )

    assert "2 lead(s) reassigned." in response.content.decode()
    owners = dict(Lead.objects.values_list("pk", "owner_id"))
    assert owners == {leads[0].pk: binh.pk, leads[1].pk: binh.pk, leads[2].pk: an.pk}
    assert Notification.objects.filter(user=binh, kind="assigned").count() == 2


def test_the_team_board_is_for_managers(client, north):
    _team, (an, _binh) = north
    client.force_login(an)

    assert client.get(TEAM).status_code == 403
    assert client.post(reverse("sales:reassign_many"), {}).status_code == 403


def test_notifications_list_count_and_open(
    client, north, make_lead, django_capture_on_commit_callbacks
):
    team, (an, _binh) = north
    with django_capture_on_commit_callbacks(execute=True):
        lead = make_mql(make_lead, "mai@example.vn", full_name="Trần Thị Mai")
        lead_assign(lead_id=lead.pk)
    client.force_login(an)

    badge = client.get(reverse("sales:notification_badge")).content.decode()
    page = client.get(reverse("sales:notifications")).content.decode()
    notification = Notification.objects.get(user=an)
    opened = client.post(reverse("sales:notification_open", args=[notification.pk]))
    badge_after = client.get(reverse("sales:notification_badge")).content.decode()

    assert 'data-unread="1"' in badge
    assert "Lead assigned" in page and "Trần Thị Mai" in page
    assert opened["Location"] == lead.get_absolute_url()
    assert "data-unread" not in badge_after
    client.force_login(team.manager)
    other = client.post(reverse("sales:notification_open", args=[notification.pk]))
    assert other.status_code == 404


def test_the_navigation_shows_the_hand_off_by_role(client, north, user):
    team, (an, _binh) = north

    def nav(person):
        client.force_login(person)
        return client.get(reverse("sales:notifications")).content.decode()

    rep, manager, marketer = nav(an), nav(team.manager), nav(user)

    assert INBOX in rep and QUEUE in rep and TEAM not in rep
    assert INBOX in manager and TEAM in manager
    assert INBOX not in marketer and TEAM not in marketer
    assert reverse("sales:notification_badge") in marketer


def test_marketers_get_403_on_the_inbox_and_queue(client, user):
    client.force_login(user)

    assert client.get(INBOX).status_code == 403
    assert client.get(QUEUE).status_code == 403


def test_the_lead_page_shows_the_hand_off_and_lets_a_manager_reassign(
    client, north, make_lead
):
    team, (an, binh) = north
    lead = _assigned(make_lead, an, team, "mai@example.vn")

    client.force_login(an)
    rep_page = client.get(lead.get_absolute_url()).content.decode()
    client.force_login(team.manager)
    manager_page = client.get(lead.get_absolute_url()).content.decode()
    moved = client.post(reverse("sales:reassign", args=[lead.pk]), {"rep": binh.pk})

    assert "Sales hand-off" in rep_page
    assert reverse("sales:accept", args=[lead.pk]) in rep_page
    assert reverse("sales:reassign", args=[lead.pk]) not in rep_page
    assert reverse("sales:reassign", args=[lead.pk]) in manager_page
    assert moved.status_code == 302
    lead.refresh_from_db()
    assert lead.owner == binh


def test_invite_user_puts_a_person_in_a_role_and_team_and_emails_a_link(client):
    from django.contrib.auth import get_user_model
    from django.core import mail
    from django.core.management import call_command

    call_command(
        "invite_user", "Lan@Example.vn", "--role", "Sales rep", "--team", "Hà Nội",
        "--capacity", "20", "--name", "Nguyễn Lan", stdout=StringIO(),
    )  # fmt: skip
    call_command(
        "invite_user", "boss@example.vn", "--role", "Sales manager",
        "--team", "Hà Nội", "--no-email", stdout=StringIO(),
    )  # fmt: skip

    lan = get_user_model().objects.get(username="lan@example.vn")
    assert lan.groups.get().name == "Sales rep"
    assert (lan.team_membership.team.name, lan.team_membership.capacity) == (
        "Hà Nội",
        20,
    )
    assert lan.team_membership.team.manager.username == "boss@example.vn"
    assert lan.has_perm("leads.work_inbox")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["lan@example.vn"]
    link = re.search(r"http://[^/]+(/password/\S+)", mail.outbox[0].body).group(1)
    page = client.get(link, follow=True)
    assert page.status_code == 200
    assert 'name="new_password1"' in page.content.decode()
