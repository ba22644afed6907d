import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from leads.assignment import lead_assign, lead_reassign
from leads.models import (
    Assignment,
    AssignmentRule,
    Channel,
    InteractionKind,
    Lead,
    Notification,
    RuleField,
    TeamMember,
)
from leads.services import InteractionData, lead_move
from tests.handoff_helpers import fast_passwords, make_mql, make_team  # noqa: F401


def _demo_request() -> InteractionData:
    return InteractionData(kind=InteractionKind.DEMO_REQUEST, channel=Channel.WEB_FORM)


@pytest.mark.django_db
def test_a_lead_scored_to_mql_is_assigned_and_its_rep_notified_after_commit(
    make_user, make_lead, django_capture_on_commit_callbacks
):
    team, (an, _binh) = make_team(make_user, "north")

    with django_capture_on_commit_callbacks(execute=False) as pending:
        lead = make_lead(
            email="mai@vinatech.vn",
            phone="0912345678",
            full_name="Trần Thị Mai",
            company="VinaTech",
            interactions=[_demo_request()],
            score=True,
        )
    nothing_before_commit = (
        Notification.objects.count(),
        Lead.objects.get(pk=lead.pk).owner_id,
    )
    with django_capture_on_commit_callbacks(execute=True):
        for callback in pending:
            callback()

    lead.refresh_from_db()
    assert nothing_before_commit == (0, None)
    assert lead.level == "mql" and lead.mql_at is not None
    assert (lead.owner, lead.team) == (an, team)
    assert lead.accept_due_at > lead.assigned_at
    notification = Notification.objects.get()
    assert (notification.user, notification.lead, notification.kind) == (
        an,
        lead,
        "assigned",
    )
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["an@example.vn"]
    assert "Trần Thị Mai" in mail.outbox[0].subject
    public = settings.LEADCRM["PUBLIC_URL"].rstrip("/")
    assert f"{public}/leads/{lead.pk}/" in mail.outbox[0].body


@pytest.mark.django_db
def test_exactly_one_notification_per_assignment_even_when_redelivered(
    make_user, make_lead, django_capture_on_commit_callbacks
):
    from leads.notifications import notify_assignment

    make_team(make_user, "north")
    lead = make_mql(make_lead, "mai@example.vn")

    with django_capture_on_commit_callbacks(execute=True):
        first = lead_assign(lead_id=lead.pk)
        again = lead_assign(lead_id=lead.pk)
    notify_assignment(assignment_id=first.pk)  # a redelivered task

    assert again is None
    assert Assignment.objects.count() == 1
    assert Notification.objects.filter(assignment=first).count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_round_robin_takes_turns_and_skips_inactive_reps(make_user, make_lead):
    team, (an, binh, chi) = make_team(make_user, "north", reps=("an", "binh", "chi"))
    TeamMember.objects.filter(user=chi).update(is_active=False)

    owners = [
        lead_assign(lead_id=make_mql(make_lead, f"l{i}@example.vn").pk).rep
        for i in range(6)
    ]

    assert owners == [an, binh, an, binh, an, binh]


@pytest.mark.django_db
def test_capacity_is_respected_and_the_rest_waits_in_the_team_pool(
    make_user, make_lead, django_capture_on_commit_callbacks
):
    team, (an, binh) = make_team(make_user, "north", capacity=2)

    with django_capture_on_commit_callbacks(execute=True):
        results = [
            lead_assign(lead_id=make_mql(make_lead, f"l{i}@example.vn").pk)
            for i in range(5)
        ]

    assert Counter(r.rep.username for r in results if r) == {"an": 2, "binh": 2}
    waiting = Lead.objects.get(owner__isnull=True)
    assert waiting.team == team
    pooled = Notification.objects.get(kind="pooled")
    assert (pooled.user, pooled.lead) == (team.manager, waiting)


@pytest.mark.django_db
def test_rules_route_by_province_industry_source_and_campaign(
    make_user, make_lead, web_form
):
    north, (an,) = make_team(make_user, "north", reps=("an",))
    south, (binh,) = make_team(make_user, "south", reps=("binh",))
    banks, (chi,) = make_team(make_user, "banks", reps=("chi",))
    events, (dung,) = make_team(make_user, "events", reps=("dung",))
    AssignmentRule.objects.create(
        name="Banks", priority=1, field=RuleField.INDUSTRY, values="Banking", team=banks
    )
    AssignmentRule.objects.create(
        name="Ebook", priority=2, field=RuleField.CAMPAIGN,
        campaign=web_form.campaign, team=events,
    )  # fmt: skip
    AssignmentRule.objects.create(
        name="North", priority=3, field=RuleField.PROVINCE,
        values="Hà Nội, Hai Phong", team=north,
    )  # fmt: skip
    AssignmentRule.objects.create(
        name="Fairs", priority=4, field=RuleField.SOURCE, values="fair", team=south
    )
    AssignmentRule.objects.create(
        name="Rest", priority=9, field=RuleField.ANY, team=south
    )

    def owner(email, **fields):
        return lead_assign(lead_id=make_mql(make_lead, email, **fields).pk).rep

    assert owner("a@x.vn", city="Ha Noi", industry="banking") == chi
    assert owner("b@x.vn", city="Hải Phòng") == an
    assert owner("c@x.vn", campaign_id=web_form.campaign_id, city="Hà Nội") == dung
    assert owner("d@x.vn", source="Fair") == binh
    assert owner("e@x.vn", city="Đà Nẵng") == binh


@pytest.mark.django_db
def test_a_rule_may_name_a_rep_until_they_are_full(make_user, make_lead):
    team, (an, binh) = make_team(make_user, "north", capacity=1)
    AssignmentRule.objects.create(
        name="VIP", field=RuleField.INDUSTRY, values="Retail", team=team, rep=binh
    )

    first = lead_assign(lead_id=make_mql(make_lead, "a@x.vn", industry="retail").pk)
    second = lead_assign(lead_id=make_mql(make_lead, "b@x.vn", industry="retail").pk)

    assert (first.rep, first.method) == (binh, "rule")
    assert second.rep == an


@pytest.mark.django_db
def test_with_several_teams_and_no_rule_a_lead_waits(make_user, make_lead):
    make_team(make_user, "north")
    make_team(make_user, "south", reps=("chi",))

    lead = make_mql(make_lead, "a@x.vn")

    assert lead_assign(lead_id=lead.pk) is None
    assert Lead.objects.get(pk=lead.pk).owner is None


@pytest.mark.django_db
def test_a_person_moving_a_lead_to_mql_starts_the_hand_off(
    make_user, make_lead, django_capture_on_commit_callbacks
):
    team, (an, _binh) = make_team(make_user, "north")
    marketer = make_user("mai", perms=("leads.move_lead",))
    lead = make_lead(email="a@x.vn")

    with django_capture_on_commit_callbacks(execute=True):
        lead_move(lead_id=lead.pk, by=marketer, to_level="mql")

    lead.refresh_from_db()
    assert lead.mql_at is not None
    assert lead.owner == an


@pytest.mark.django_db
def test_a_manager_reassigns_one_or_many_leads_of_their_team(
    make_user, make_lead, django_capture_on_commit_callbacks
):
    team, (an, binh) = make_team(make_user, "north")
    _other, (chi,) = make_team(make_user, "south", reps=("chi",))
    AssignmentRule.objects.create(name="All", field=RuleField.ANY, team=team)
    leads = [make_mql(make_lead, f"l{i}@x.vn") for i in range(3)]
    for lead in leads:
        lead_assign(lead_id=lead.pk)

    with django_capture_on_commit_callbacks(execute=True):
        moved = lead_reassign(
            lead_ids=[lead.pk for lead in leads], to_user_id=binh.pk, by=team.manager
        )

    assert moved == 2  # one of the three was binh's already
    assert set(Lead.objects.values_list("owner", flat=True)) == {binh.pk}
    assert Notification.objects.filter(user=binh, kind="assigned").count() == 2
    assert Assignment.objects.filter(method="manual", assigned_by=team.manager).count()
    with pytest.raises(ValidationError):
        lead_reassign(lead_ids=[leads[0].pk], to_user_id=chi.pk, by=team.manager)
    with pytest.raises(PermissionDenied):
        lead_reassign(lead_ids=[leads[0].pk], to_user_id=an.pk, by=binh)


def _in_threads(target, items, workers: int) -> list:
    """Run target(item) for every item on `workers` threads at once; each
    thread has its own database connection."""
    errors = []
    barrier = threading.Barrier(workers)
    chunks = [items[i::workers] for i in range(workers)]

    def run(chunk):
        try:
            barrier.wait()
            for item in chunk:
                target(item)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_mqls_are_shared_fairly(make_user, make_lead):
    team, reps = make_team(make_user, "north", reps=("an", "binh", "chi"))
    ids = [make_mql(make_lead, f"l{i}@x.vn").pk for i in range(30)]

    errors = _in_threads(lambda pk: lead_assign(lead_id=pk), ids, workers=6)

    assert errors == []
    load = Counter(Lead.objects.values_list("owner__username", flat=True))
    assert load == {"an": 10, "binh": 10, "chi": 10}
    assert Assignment.objects.count() == 30


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_mqls_never_push_a_rep_past_capacity(make_user, make_lead):
    team, reps = make_team(make_user, "north", reps=("an", "binh", "chi"), capacity=4)
    ids = [make_mql(make_lead, f"l{i}@x.vn").pk for i in range(20)]

    errors = _in_threads(lambda pk: lead_assign(lead_id=pk), ids, workers=8)
    # Redelivered tasks change nothing.
    errors += _in_threads(lambda pk: lead_assign(lead_id=pk), ids, workers=4)

    assert errors == []
    load = Counter(
        Lead.objects.filter(owner__isnull=False).values_list("owner_id", flat=True)
    )
    assert sorted(load.values()) == [4, 4, 4]
    assert Lead.objects.filter(owner__isnull=True, team=team).count() == 8
    assert Assignment.objects.count() == 12


@pytest.mark.django_db
def test_the_sweep_assigns_leads_whose_task_was_lost(make_user, make_lead):
    from leads.tasks import handoff_sweep

    team, (an, _binh) = make_team(make_user, "north")
    lead = make_mql(make_lead, "a@x.vn")
    Lead.objects.filter(pk=lead.pk).update(mql_at=timezone.now() - timedelta(hours=1))

    result = handoff_sweep.apply().get()

    assert result["assigned"] == 1
    assert Lead.objects.get(pk=lead.pk).owner == an
