from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Max
from django.utils import timezone

from campaigns.demo import (
    ASSIGNED_MQLS,
    GENERATED_LEADS,
    SALES_REP_CAPACITY,
    SAMPLE_FILE,
)
from campaigns.models import Campaign, Event, WebForm
from leads import selectors
from leads.models import (
    Assignment,
    AssignmentRule,
    Interaction,
    Lead,
    LevelChange,
    Team,
    TeamMember,
)
from tests import services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _debug(settings):
    """`make run` seeds with DEBUG on; the test runner turns it off."""
    settings.DEBUG = True


@pytest.fixture
def no_sample(settings, tmp_path):
    settings.LEADCRM = {**settings.LEADCRM, "SAMPLE_DATA_DIR": tmp_path}


@pytest.fixture
def small_sample(settings, tmp_path):
    """The first twenty rows of the sample, so the sample path runs quickly."""
    with services.sample_csv().open(encoding="utf-8") as source:
        head = [next(source) for _ in range(21)]
    (tmp_path / SAMPLE_FILE).write_text("".join(head), encoding="utf-8")
    settings.LEADCRM = {**settings.LEADCRM, "SAMPLE_DATA_DIR": tmp_path}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, object]:
    return {
        "users": get_user_model().objects.count(),
        "teams": list(TeamMember.objects.values_list("team__name", "user__username")),
        "rules": AssignmentRule.objects.count(),
        "assignments": Assignment.objects.count(),
        "campaigns": Campaign.objects.count(),
        "forms": WebForm.objects.count(),
        "events": list(Event.objects.values_list("name", "starts_at")),
        "leads": Lead.objects.count(),
        "interactions": Interaction.objects.count(),
        "level_changes": LevelChange.objects.count(),
        "last_update": Lead.objects.aggregate(last=Max("updated_at"))["last"],
    }


def test_seeding_makes_the_users_the_campaign_and_its_form(no_sample):
    output = seed()

    users = get_user_model().objects
    admin, marketer = users.get(username="admin"), users.get(username="marketer")
    assert admin.is_superuser and admin.is_staff
    assert not (marketer.is_superuser or marketer.is_staff)
    assert admin.check_password("leadcrm-demo")
    assert marketer.check_password("leadcrm-demo")
    campaign = Campaign.objects.get(utm_campaign="vn-growth-2026")
    assert (campaign.name, campaign.kind, campaign.utm_campaign) == (
        "Vietnam Growth Webinar 2026",
        "webinar",
        "vn-growth-2026",
    )
    assert WebForm.objects.get(key="demo").campaign == campaign
    assert "http://127.0.0.1:8000/" in output
    assert "http://127.0.0.1:8000/static/demo/form.html" in output
    assert "leadcrm-demo" in output
    for username in ("admin", "marketer", "manager", "rep", "rep2"):
        assert f"  {username} " in output


def test_seeding_makes_a_sales_team_in_the_roles(no_sample):
    output = seed()

    users = get_user_model().objects
    team = Team.objects.get(name="Hà Nội")
    manager = users.get(username="manager")
    assert team.manager == manager
    assert manager.groups.filter(name="Sales manager").exists()
    assert manager.has_perm("leads.assign_lead")
    assert manager.check_password("leadcrm-demo")
    assert sorted(team.members.values_list("user__username", flat=True)) == [
        "rep",
        "rep2",
    ]
    for username in ("rep", "rep2"):
        rep = users.get(username=username)
        assert rep.check_password("leadcrm-demo")
        assert rep.groups.filter(name="Sales rep").exists()
        assert rep.has_perm("leads.work_inbox") and rep.has_perm("leads.change_bant")
        assert not rep.has_perm("leads.assign_lead")
    assert AssignmentRule.objects.get(team=team).field == "city"
    assert "Sales manager of team Hà Nội" in output


def test_the_reps_start_with_mqls_in_their_inboxes(no_sample):
    output = seed()

    users = get_user_model().objects
    rep, rep2 = users.get(username="rep"), users.get(username="rep2")
    assignments = Assignment.objects.all()
    assert assignments.count() == ASSIGNED_MQLS
    # Given by the hand-off service, in turns. (Its notifications go out
    # after commit, which a test inside a transaction never reaches.)
    assert {a.method for a in assignments} == {"round_robin"}
    assert sorted(a.rep.username for a in assignments) == ["rep"] * 3 + ["rep2"] * 3
    inbox = list(selectors.mql_inbox(user=rep))
    assert len(inbox) == 3
    assert all(lead.level == "mql" and lead.accept_due_at for lead in inbox)
    assert len(selectors.mql_inbox(user=rep2)) == 3
    # The manager sees the team's leads; a rep sees only their own.
    manager = users.get(username="manager")
    assert len(selectors.team_board(user=manager)) == ASSIGNED_MQLS
    assert set(Lead.objects.visible_to(rep)) == set(inbox)
    assert f"{ASSIGNED_MQLS} demo MQLs assigned" in output


def test_seeding_makes_a_webinar_next_week_with_a_registration_form(no_sample, client):
    output = seed()

    event = Event.objects.get()
    assert event.kind == "webinar"
    days = (event.starts_at - timezone.now()).days
    assert 5 <= days <= 7
    assert event.form.key == "webinar" and event.form.campaign == event.campaign
    assert client.get("/f/webinar/").status_code == 200
    assert "http://127.0.0.1:8000/f/webinar/" in output


def test_without_the_sample_vietnamese_leads_are_made_up_and_scored(no_sample):
    seed()

    leads = Lead.objects.all()
    assert leads.count() == GENERATED_LEADS
    assert not leads.filter(score_stale=True).exists()
    assert all(lead.email or lead.phone for lead in leads)
    assert all(lead.phone.startswith("+84") for lead in leads if lead.phone)
    assert any(not lead.full_name.isascii() for lead in leads)
    assert Interaction.objects.filter(kind="webinar_registration").exists()
    assert leads.filter(first_touch_campaign__utm_campaign="vn-growth-2026").exists()


def test_the_made_up_leads_are_the_same_every_time(no_sample):
    seed()
    first = sorted(Lead.objects.values_list("email", "phone", "full_name", "company"))
    Lead.objects.all().delete()

    seed()

    again = sorted(Lead.objects.values_list("email", "phone", "full_name", "company"))
    assert again == first


def test_seeding_twice_changes_nothing_the_second_time(no_sample):
    seed()
    before = snapshot()

    output = seed()

    assert snapshot() == before
    assert "0 new" in output


@pytest.mark.sample_data
def test_with_the_sample_present_seeding_imports_it_once(small_sample):
    seed()
    before = snapshot()

    seed()

    assert before["leads"] == 20
    assert Lead.objects.filter(
        external_id="2a272436-5132-4136-86fa-dcc88c88f482", source="Organic Search"
    ).exists()
    assert snapshot() == before


def test_seeding_is_refused_when_debug_is_off(no_sample, settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG is off"):
        seed()
    assert not Lead.objects.exists()

    seed("--force")
    assert Lead.objects.count() == GENERATED_LEADS


def test_running_the_periodic_jobs_once_hands_the_waiting_mqls_to_the_team(no_sample):
    seed()
    waiting = Lead.objects.filter(level="mql", owner__isnull=True).count()
    assert waiting > 0
    out = StringIO()

    call_command("run_periodic_jobs", "handoff-sweep", stdout=out)

    # Every waiting MQL now has the team: an owner while reps have room,
    # else a place in the team's pool for the manager's board.
    assert not Lead.objects.filter(level="mql", team__isnull=True).exists()
    owned = Lead.objects.filter(level="mql", owner__isnull=False).count()
    assert owned == min(ASSIGNED_MQLS + waiting, 2 * SALES_REP_CAPACITY)
    assert "handoff-sweep: {'assigned': " in out.getvalue()


def test_an_unknown_periodic_job_is_refused_by_name():
    with pytest.raises(CommandError, match="Unknown job: nightly"):
        call_command("run_periodic_jobs", "nightly")
