"""Who may see a lead: the owner, their manager, the team's pool, marketers
and admins. Everyone else gets 404 on every path, whatever the action."""

import csv
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from leads.models import Lead
from tests.handoff_helpers import fast_passwords, make_mql, make_team  # noqa: F401

pytestmark = pytest.mark.django_db

# Every URL that names one lead, with what a POST to it carries.
LEAD_URLS = [
    ("get", "leads:detail", (), {}),
    ("get", "api:lead-detail", (), {}),
    ("post", "leads:recycle", (), {"recycle-reason_code": "not_now"}),
    ("post", "leads:disqualify", (), {"disqualify-reason_code": "spam"}),
    ("post", "leads:reopen", (), {}),
    ("post", "leads:move", (), {"move-to_level": "sql"}),
    ("post", "leads:bant_confirm", ("need",), {"bant-need-need": "CRM"}),
    ("post", "sales:accept", (), {}),
    ("post", "sales:reject", (), {"reason_code": "spam", "outcome": "recycle"}),
    ("post", "sales:reassign", (), {"rep": ""}),
]


@pytest.fixture
def people(make_user, make_lead):
    north, (owner, teammate) = make_team(make_user, "north", reps=("an", "binh"))
    south, (outsider,) = make_team(make_user, "south", reps=("chi",))
    lead = make_mql(make_lead, "mai@example.vn", full_name="Trần Thị Mai")
    Lead.objects.filter(pk=lead.pk).update(team=north)
    # Two teams and no rule: the lead is given by hand, as a manager would.
    from leads.assignment import give

    give(lead, owner, north, method="manual", now=lead.mql_at)
    return {
        "owner": owner,
        "teammate": teammate,
        "outsider": outsider,
        "manager": north.manager,
        "other_manager": south.manager,
        "lead": lead,
    }


def _call(client, method, name, args, data, lead):
    url = reverse(name, args=[lead.pk, *args])
    return getattr(client, method)(url, data)


@pytest.mark.parametrize("who", ["teammate", "outsider", "other_manager"])
@pytest.mark.parametrize(("method", "name", "args", "data"), LEAD_URLS)
def test_people_outside_the_lead_get_404_everywhere(
    client, people, who, method, name, args, data
):
    lead = people["lead"]
    client.force_login(people[who])

    response = _call(client, method, name, args, data, lead)

    assert response.status_code == 404
    lead.refresh_from_db()
    assert (lead.owner, lead.level, lead.status) == (people["owner"], "mql", "open")
    assert not lead.bant.exists()


@pytest.mark.parametrize("who", ["owner", "manager"])
@pytest.mark.parametrize(("method", "name", "args", "data"), LEAD_URLS)
def test_the_owner_and_their_manager_reach_every_lead_url(
    client, people, who, method, name, args, data
):
    client.force_login(people[who])

    response = _call(client, method, name, args, data, people["lead"])

    # Found: answered, refused by permission (403) or by the form (400).
    assert response.status_code != 404


def _list_names(client, **params) -> list[str]:
    response = client.get(reverse("leads:list"), params)
    return [lead.display_name for lead in response.context["leads"]]


def _api_ids(client, **params) -> list[int]:
    response = client.get(reverse("api:lead-list"), params)
    return [row["id"] for row in response.json()["results"]]


def _export_emails(username: str) -> list[str]:
    out = StringIO()
    call_command("export_leads", "--user", username, stdout=out)
    out.seek(0)
    return [row["email"] for row in csv.DictReader(out)]


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("owner", True),
        ("manager", True),
        ("teammate", False),
        ("outsider", False),
        ("other_manager", False),
    ],
)
def test_lists_search_api_and_export_show_the_lead_only_to_those_who_may_see_it(
    client, people, who, sees
):
    lead = people["lead"]
    client.force_login(people[who])

    found = [
        "Trần Thị Mai" in _list_names(client),
        "Trần Thị Mai" in _list_names(client, q="tran thi mai"),
        lead.pk in _api_ids(client),
        lead.pk in _api_ids(client, q="mai"),
        "mai@example.vn" in _export_emails(people[who].username),
    ]

    assert found == [sees] * 5


def test_the_inbox_and_queue_belong_to_the_owner(client, people):
    lead = people["lead"]

    client.force_login(people["teammate"])
    teammate_inbox = list(client.get(reverse("sales:inbox")).context["leads"])
    client.force_login(people["owner"])
    owner_inbox = list(client.get(reverse("sales:inbox")).context["leads"])

    assert teammate_inbox == []
    assert owner_inbox == [lead]


def test_a_team_pool_is_seen_by_its_reps_only(client, make_user, make_lead):
    pool, (an, binh) = make_team(make_user, "pool", uses_pool=True)
    other, (chi,) = make_team(make_user, "other", reps=("chi",))
    lead = make_mql(make_lead, "pool@example.vn")
    Lead.objects.filter(pk=lead.pk).update(team=pool)

    visible = {
        user.username: Lead.objects.visible_to(user).filter(pk=lead.pk).exists()
        for user in (an, binh, chi, pool.manager, other.manager)
    }
    client.force_login(binh)
    claimed = client.post(reverse("sales:accept", args=[lead.pk]))

    assert visible == {
        "an": True,
        "binh": True,
        "chi": False,
        "pool-boss": True,
        "other-boss": False,
    }
    assert claimed.status_code == 302
    lead.refresh_from_db()
    assert (lead.owner, lead.accepted_at is not None) == (binh, True)
    # Once owned, the lead leaves the pool: the other rep no longer sees it.
    assert not Lead.objects.visible_to(an).filter(pk=lead.pk).exists()


def test_marketers_and_admins_see_every_lead_and_strangers_none(
    make_user, make_lead, admin_user
):
    lead = make_lead(email="a@example.vn")
    marketer = make_user("mai", perms=("leads.view_lead", "leads.view_all_leads"))
    no_role = make_user("guest")
    rep = make_user("rep", perms=("leads.view_lead",))

    assert Lead.objects.visible_to(marketer).get() == lead
    assert Lead.objects.visible_to(admin_user).get() == lead
    assert not Lead.objects.visible_to(no_role).exists()
    assert not Lead.objects.visible_to(rep).exists()
