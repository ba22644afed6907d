"""Defects found by the breaker session. Each test fails on the defect it
names and should pass once it is fixed; the report explains each one."""

import contextlib
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.models import Submission
from campaigns.services import submission_process
from leads.models import Lead, Team, TeamMember
from leads.opportunities import OpportunityInput, opportunity_convert
from tests.sales_helpers import mql_lead, sql_lead

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def teams(make_user, make_lead):
    """Two teams in the migrations' roles; a lead of team A owned by its rep."""
    north_boss = make_user("north-boss", role="Sales manager")
    south_boss = make_user("south-boss", role="Sales manager")
    an = make_user("an", role="Sales rep")
    north = Team.objects.create(name="North", manager=north_boss)
    Team.objects.create(name="South", manager=south_boss)
    TeamMember.objects.create(team=north, user=an, capacity=50)
    lead = mql_lead(make_lead, owner=an, email="mai@vinatech.vn", phone="0912345678")
    Lead.objects.filter(pk=lead.pk).update(team=north)
    return {"an": an, "north": north, "south_boss": south_boss, "lead": lead}


def test_the_api_does_not_disclose_a_lead_the_poster_may_not_see(client, teams):
    """A sales manager of another team posts the email of a lead they may
    not see to the REST API: the answer must not carry that lead's data."""
    client.force_login(teams["south_boss"])
    assert client.get(f"/api/leads/{teams['lead'].pk}/").status_code == 404

    response = client.post(
        "/api/leads/",
        data=json.dumps({"email": "MAI@vinatech.vn"}),
        content_type="application/json",
    )

    assert b"+84912345678" not in response.content
    assert str(teams["lead"].pk) != str(response.json().get("id"))


def test_rejecting_a_converted_lead_does_not_orphan_its_opportunity(client, teams):
    """The inbox's reject is for leads waiting to be taken on. A rep who
    rejects a lead that was accepted and converted takes it away from the
    team (owner and team cleared), and its open opportunity with it: the
    rep and their manager then get 404 on their own deal."""
    an = teams["an"]
    lead = sql_lead(lambda **kw: Lead.objects.get(pk=teams["lead"].pk), an)
    opportunity = opportunity_convert(
        lead_id=lead.pk,
        by=an,
        data=OpportunityInput(
            name="VinaTech CRM",
            amount=Decimal("120000000"),
            expected_close_on=timezone.localdate() + timedelta(days=30),
        ),
    )
    client.force_login(an)

    client.post(
        f"/sales/leads/{lead.pk}/reject/",
        {"reason_code": "not_a_fit", "outcome": "recycle"},
    )

    assert client.get(f"/opportunities/{opportunity.pk}/").status_code == 200
    client.force_login(teams["north"].manager)
    assert client.get(f"/opportunities/{opportunity.pk}/").status_code == 200


def test_a_task_due_in_year_one_does_not_break_the_lead_page(client, teams):
    """A task due "0001-01-01T00:00" (local time, UTC+7) is accepted, stored
    as a timestamp in year 0 UTC, and from then on every read of it fails:
    the lead's page and the rep's task list answer 500 for everyone."""
    lead = teams["lead"]
    client.force_login(teams["an"])
    client.raise_request_exception = False

    response = client.post(
        f"/leads/{lead.pk}/activities/",
        {
            "activity-kind": "task",
            "activity-subject": "Call back",
            "activity-due_at": "0001-01-01T00:00",
        },
    )

    assert response.status_code in (200, 302, 400)
    assert client.get(f"/leads/{lead.pk}/").status_code == 200
    assert client.get("/leads/tasks/").status_code == 200


def test_a_contact_logged_before_the_mql_gives_no_negative_speed_to_lead(client, teams):
    """A call back-dated before the lead became MQL is taken as its first
    contact, and speed to lead (time_to_contact) becomes negative, which
    the dashboard's median and 90th percentile then include."""
    lead = teams["lead"]
    client.force_login(teams["an"])
    before_mql = timezone.localtime(lead.mql_at - timedelta(days=2))

    client.post(
        f"/leads/{lead.pk}/activities/",
        {
            "activity-kind": "call",
            "activity-subject": "Called",
            "activity-occurred_at": before_mql.strftime("%Y-%m-%dT%H:%M"),
        },
    )

    lead.refresh_from_db()
    assert lead.time_to_contact is None or lead.time_to_contact >= timedelta(0)


def _post_budget(client, web_form, email: str, budget: str) -> Submission:
    response = client.post(
        f"/f/{web_form.key}/",
        data=json.dumps({"email": email, "budget": budget}),
        content_type="application/json",
    )
    assert response.status_code == 202
    submission = Submission.objects.get(pk=response.json()["id"])
    # A crash is the worker's retry path; the status tells what came of it.
    with contextlib.suppress(Exception):
        submission_process(submission_id=submission.pk)
    submission.refresh_from_db()
    return submission


@pytest.mark.parametrize(
    ("budget", "amount"),
    [
        ("120.000.000,00", Decimal("120000000")),
        ("120,000,000.00", Decimal("120000000")),
        ("120 triệu", Decimal("120000000")),
        ("1,5 tỷ", Decimal("1500000000")),
    ],
)
def test_a_stated_vnd_budget_is_read_as_written(client, web_form, budget, amount):
    """parse_amount drops every non-digit of a VND amount: a trailing ",00"
    makes the budget a hundred times larger, "120 triệu" (120 million, how
    Vietnamese people write it) becomes 120 dong."""
    submission = _post_budget(client, web_form, "lan@example.vn", budget)

    assert submission.status == "processed"
    stated = submission.lead.bant.get(criterion="budget")
    assert stated.amount in (amount, None)


def test_a_huge_stated_budget_does_not_lose_the_lead(client, web_form):
    """A budget of 30 digits passes the capture (202) and then overflows
    Bant.amount (max_digits=18) in the worker: the submission is never
    processed and the person's lead is never created."""
    submission = _post_budget(client, web_form, "hoa@example.vn", "9" * 30)

    assert submission.status == "processed"
    assert Lead.objects.filter(email="hoa@example.vn").exists()


def test_a_customer_cannot_be_recycled_to_nurture(client, teams, make_user):
    """Won makes the lead a customer; a marketer can still recycle it to
    IQL (status customer, level IQL) or disqualify it."""
    an = teams["an"]
    lead = sql_lead(lambda **kw: Lead.objects.get(pk=teams["lead"].pk), an)
    opportunity = opportunity_convert(
        lead_id=lead.pk,
        by=an,
        data=OpportunityInput(
            name="VinaTech CRM",
            amount=Decimal("120000000"),
            expected_close_on=timezone.localdate() + timedelta(days=30),
        ),
    )
    client.force_login(an)
    client.post(f"/opportunities/{opportunity.pk}/move/", {"to_stage": "won"})
    lead.refresh_from_db()
    assert lead.status == "customer"
    client.force_login(make_user("mai", role="Marketer"))

    client.post(f"/leads/{lead.pk}/recycle/", {"recycle-reason_code": "not_now"})

    lead.refresh_from_db()
    assert (lead.status, lead.level) == ("customer", "sql")


def test_a_bad_content_length_is_a_client_error(client, web_form):
    """int() of the Content-Length header is unguarded: a non-numeric value
    (the development server passes it through) is a 500."""
    client.raise_request_exception = False

    response = client.post(
        f"/f/{web_form.key}/",
        data="email=lan%40example.vn",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH="abc",
    )

    assert response.status_code == 400


def test_an_implausible_platform_time_falls_back_to_the_delivery_time(client):
    """_occurred_at promises the delivery time when created_time is not
    plausible; instead a created_time of 1970, of year 1 or out of range
    fails the whole delivery and the lead is never created."""
    import time

    from campaigns.inbound import delivery_process, sign
    from campaigns.models import Campaign, InboundDelivery, LeadSource

    source = LeadSource.objects.create(
        name="Ads",
        key="ads",
        secret="a-long-shared-secret",
        campaign=Campaign.objects.create(name="Ads", kind="social"),
    )
    body = json.dumps(
        {
            "lead_id": "L1",
            "email": "vy@example.vn",
            "created_time": "1970-01-01T00:00:00Z",
        }
    ).encode()
    stamp = str(int(time.time()))
    response = client.post(
        "/in/ads/",
        data=body,
        content_type="application/json",
        HTTP_X_LEADCRM_TIMESTAMP=stamp,
        HTTP_X_LEADCRM_SIGNATURE=sign(secret=source.secret, timestamp=stamp, body=body),
    )
    assert response.status_code == 202

    delivery_process(delivery_id=InboundDelivery.objects.get().pk)

    assert InboundDelivery.objects.get().status == "processed"
    assert Lead.objects.filter(email="vy@example.vn").exists()


def test_a_phone_in_brackets_with_the_country_code_is_found(
    client, make_user, make_lead
):
    """Search promises any phone notation; "(+84) 987-654-321" misses the
    lead because _PHONE_LIKE does not allow "(" before "+"."""
    make_lead(email="duc@example.vn", full_name="Đặng Văn Đức", phone="0987654321")
    client.force_login(make_user("mai", role="Marketer"))

    response = client.get("/leads/", {"q": "(+84) 987-654-321"})

    assert "duc@example.vn" in response.content.decode()


@pytest.mark.parametrize(
    "url",
    ["/opportunities/", "/campaigns/", "/events/", "/emails/", "/emails/segments/"],
)
def test_a_nul_in_a_search_is_not_a_server_error(client, make_user, url):
    """The leads list strips NUL from its query; these lists pass it to
    PostgreSQL, which refuses it ("A string literal cannot contain NUL")."""
    client.force_login(make_user("mai", role="Marketer"))
    client.raise_request_exception = False

    response = client.get(url, {"q": "a\x00b"})

    assert response.status_code < 500


def test_a_custom_period_at_the_end_of_the_calendar_is_not_a_server_error(
    client, make_user
):
    """A custom period in year 9999 passes the form (at most three years)
    and overflows a date computation in speed_to_lead / day_bounds."""
    client.force_login(make_user("mai", role="Marketer"))
    client.raise_request_exception = False

    response = client.get(
        "/dashboard/",
        {"period": "custom", "start": "9999-01-01", "end": "9999-12-31"},
    )

    assert response.status_code < 500


def test_the_api_does_not_change_a_lead_the_poster_may_not_see(client, teams):
    """The same path writes: the other team's manager overwrites the lead's
    name and company, withdraws its email consent and adds a demo request
    that rescores it, all on a lead that is 404 to them everywhere else."""
    lead = teams["lead"]
    client.force_login(teams["south_boss"])

    client.post(
        "/api/leads/",
        data=json.dumps(
            {
                "email": "mai@vinatech.vn",
                "full_name": "Someone Else",
                "company": "Other Co",
                "kind": "demo_request",
            }
        ),
        content_type="application/json",
    )

    lead.refresh_from_db()
    assert (lead.full_name, lead.company) == ("Nguyễn Văn An", "VinaTech")


@pytest.mark.redis
def test_one_address_over_its_limit_does_not_make_other_visitors_spam(
    client, web_form, settings
):
    """Posts refused by the per-IP limit still count towards the per-form
    limit: one address that keeps posting fills the form's budget, and every
    real visitor's post for the rest of the minute lands in the spam log."""
    import redis

    from tests import services

    redis.Redis.from_url(services.redis_url()).flushdb()
    settings.LEADCRM = {
        **settings.LEADCRM,
        "RATE_LIMIT_REDIS_URL": services.redis_url(),
        "RATE_LIMIT_PER_IP": 5,
        "RATE_LIMIT_PER_FORM": 30,
    }
    for number in range(31):
        client.post(
            f"/f/{web_form.key}/",
            {"email": f"bot{number}@example.com"},
            REMOTE_ADDR="10.0.0.66",
        )

    client.post(
        f"/f/{web_form.key}/", {"email": "lan@example.vn"}, REMOTE_ADDR="10.0.0.7"
    )

    real = Submission.objects.get(payload__email="lan@example.vn")
    redis.Redis.from_url(services.redis_url()).flushdb()
    assert real.status != "spam"


@pytest.mark.parametrize("custom", ["course = nan", "course = inf", "course = 1e400"])
def test_a_segment_condition_that_reads_as_a_float_is_not_a_server_error(
    client, make_user, make_lead, custom
):
    """_custom_equals turns any value float() accepts into a JSON number:
    NaN and infinity are not JSON, and PostgreSQL refuses the query."""
    make_lead(email="lan@example.vn", custom={"course": "MBA"})
    client.force_login(make_user("mai", role="Marketer"))
    client.raise_request_exception = False

    response = client.get("/emails/segments/count/", {"custom": custom})

    assert response.status_code == 200


def test_a_segment_condition_key_is_a_key_not_a_lookup(client, make_user, make_lead):
    """_CUSTOM_KEY allows "__", so "course__regex = ^M" runs a regular
    expression (and "course__isnull = false" is a 500) instead of matching
    a custom key of that name."""
    make_lead(email="lan@example.vn", custom={"course": "MBA"})
    client.force_login(make_user("mai", role="Marketer"))

    response = client.get("/emails/segments/count/", {"custom": "course__regex = ^M"})

    assert "1 lead matches" not in response.content.decode()
