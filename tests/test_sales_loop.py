"""The whole loop on PostgreSQL with a real worker: a form post becomes an
MQL, an assignment rule gives it to the right rep, who is told once,
accepts it, confirms BANT (the worker rescores it to SQL), converts it and
wins the deal. The rep works through the same pages a browser uses."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign, WebForm
from leads.models import (
    Assignment,
    AssignmentRule,
    Lead,
    LevelChange,
    Notification,
    Opportunity,
    RuleField,
    Team,
    TeamMember,
)
from leads.notifications import notify_assignment
from leads.tasks import handoff_sweep
from tests import services
from tests.handoff_helpers import fast_passwords  # noqa: F401
from tests.worker import WorkerProcess, publishing_to, wait_for

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

# The roles' permissions, as the migrations give them to the groups (the
# groups themselves vanish in the flush between transactional tests).
REP_PERMS = (
    "leads.view_lead",
    "leads.move_lead",
    "leads.view_bant",
    "leads.add_bant",
    "leads.change_bant",
    "leads.work_inbox",
    "leads.view_activity",
    "leads.add_activity",
    "leads.change_activity",
    "leads.view_opportunity",
    "leads.add_opportunity",
    "leads.change_opportunity",
    "leads.view_opportunity_amount",
    "leads.view_opportunitystagechange",
)
MANAGER_PERMS = (*REP_PERMS, "leads.assign_lead")

POST = {
    "email": "hoa.pham@saoviet.example",
    "phone": "0912 345 678",
    "full_name": "Phạm Thị Hoa",
    "company": "Công ty TNHH Sao Việt",
    "job_title": "Giám đốc điều hành",
    "city": "Hà Nội",
}


@pytest.fixture
def mail_dir(tmp_path, monkeypatch):
    # The worker reads its settings from the environment it starts in: its
    # notifications go to files the test can count.
    directory = tmp_path / "mail"
    monkeypatch.setenv(
        "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend"
    )
    monkeypatch.setenv("DJANGO_EMAIL_FILE_PATH", str(directory))
    return directory


@pytest.fixture
def worker(tmp_path, mail_dir):
    process = WorkerProcess(services.redis_url(), tmp_path)
    process.start()
    with publishing_to(process.broker_url, process.queue):
        yield process
    process.stop()


@pytest.fixture
def demo_request_form(db):
    campaign = Campaign.objects.create(name="Demo days 2026", kind="webinar")
    return WebForm.objects.create(
        campaign=campaign,
        name="Request a demo",
        key="demo-request",
        interaction_kind="demo_request",
    )


@pytest.fixture
def sales(make_user):
    """Two teams: Hà Nội (a manager, reps Lan and Minh) and Hồ Chí Minh
    (rep Tuấn). A rule sends Hà Nội's leads to Minh; every other lead goes
    to Hồ Chí Minh. Without the first rule, the lead would be Tuấn's; by
    round robin within Hà Nội, it would be Lan's."""

    def person(username, perms):
        user = make_user(username, perms=perms)
        user.email = f"{username}@example.vn"
        user.save(update_fields=["email"])
        return user

    boss = person("hanoi-boss", MANAGER_PERMS)
    lan, minh, tuan = (person(name, REP_PERMS) for name in ("lan", "minh", "tuan"))
    hanoi = Team.objects.create(name="Hà Nội", manager=boss)
    saigon = Team.objects.create(name="Hồ Chí Minh")
    for team, rep in ((hanoi, lan), (hanoi, minh), (saigon, tuan)):
        TeamMember.objects.create(team=team, user=rep, capacity=20)
    rule = AssignmentRule.objects.create(
        name="Hà Nội to Minh",
        priority=10,
        field=RuleField.PROVINCE,
        values="Hà Nội, Ha Noi",
        team=hanoi,
        rep=minh,
    )
    AssignmentRule.objects.create(
        name="Everyone else", priority=100, field=RuleField.ANY, team=saigon
    )
    return {"rule": rule, "hanoi": hanoi, "boss": boss, "minh": minh, "lan": lan}


def messages_to(directory, address: str) -> int:
    text = "".join(p.read_text() for p in directory.glob("*.log"))
    return len(re.findall(rf"^To: {re.escape(address)}$", text, flags=re.M))


def test_a_posted_lead_goes_from_form_to_won_deal(
    demo_request_form, sales, worker, mail_dir
):
    minh, rule = sales["minh"], sales["rule"]

    # 1. Marketing: the post is captured and the worker makes it an MQL.
    response = Client().post("/f/demo-request/", POST, HTTP_ACCEPT="application/json")
    assert response.status_code == 202

    # 2. Hand-off: the worker assigns it by the rule and tells Minh.
    wait_for(
        lambda: Notification.objects.filter(emailed_at__isnull=False).exists(),
        timeout=60,
        what="the worker to assign the lead and email the rep",
    )
    lead = Lead.objects.get()
    assert lead.level == "mql"
    assert (lead.owner, lead.team) == (minh, sales["hanoi"])
    assert lead.mql_at is not None and lead.accept_due_at is not None
    assignment = Assignment.objects.get()
    assert (assignment.rep, assignment.method, assignment.rule) == (
        minh,
        "rule",
        rule,
    )
    assert list(Notification.objects.values_list("user", "lead", "kind")) == [
        (minh.pk, lead.pk, "assigned")
    ]
    assert messages_to(mail_dir, "minh@example.vn") == 1
    assert messages_to(mail_dir, "lan@example.vn") == 0

    # A redelivered notification task and the hand-off sweep tell nobody
    # again (they run here, where mail.outbox catches anything sent).
    assert notify_assignment(assignment_id=assignment.pk).pk == (
        Notification.objects.get().pk
    )
    assert handoff_sweep() == {"assigned": 0, "notified": 0, "escalated": 0}
    assert mail.outbox == []
    assert Notification.objects.count() == 1

    # 3. Sales: Minh finds it in the MQL inbox and accepts it.
    rep = Client()
    rep.force_login(minh)
    inbox = rep.get("/sales/inbox/")
    assert inbox.status_code == 200
    assert list(inbox.context["leads"]) == [lead]

    response = rep.post(f"/sales/leads/{lead.pk}/accept/")
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.accepted_at is not None
    assert lead.time_to_accept == lead.accepted_at - lead.mql_at
    assert list(rep.get("/sales/inbox/").context["leads"]) == []

    # The first call is the first contact: speed to lead, second measure.
    response = rep.post(
        f"/leads/{lead.pk}/activities/",
        {"activity-kind": "call", "activity-subject": "Needs and budget"},
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.first_contacted_at is not None
    assert lead.time_to_contact == lead.first_contacted_at - lead.mql_at

    # 4. BANT on the lead's page; the worker rescores the lead to SQL.
    close = timezone.localdate() + timedelta(days=45)
    for criterion, fields in (
        (
            "budget",
            {"bant-budget-amount": "250000000", "bant-budget-currency": "VND"},
        ),
        ("need", {"bant-need-need": "One CRM for three branches"}),
        ("timeline", {"bant-timeline-date": close.isoformat()}),
    ):
        response = rep.post(f"/leads/{lead.pk}/bant/{criterion}/", fields)
        assert response.status_code == 302, criterion

    def rescored_to_sql():
        fresh = Lead.objects.get(pk=lead.pk)
        return fresh.level == "sql" and not fresh.score_stale

    wait_for(rescored_to_sql, timeout=60, what="the worker to rescore to SQL")
    assert list(
        lead.bant.order_by("criterion").values_list(
            "criterion", "status", "confirmed_by"
        )
    ) == [
        ("budget", "confirmed", minh.pk),
        ("need", "confirmed", minh.pk),
        ("timeline", "confirmed", minh.pk),
    ]
    queue = rep.get("/sales/queue/")
    assert list(queue.context["leads"]) == [lead]
    assert queue.context["leads"][0].level == "sql"

    # 5. Convert into an opportunity and win it.
    response = rep.post(
        f"/leads/{lead.pk}/convert/",
        {
            "name": "Sao Việt: CRM for three branches",
            "amount": "250000000",
            "currency": "VND",
            "expected_close_on": close.isoformat(),
            "stage": "qualification",
        },
    )
    opportunity = Opportunity.objects.get(lead=lead)
    assert response.status_code == 302
    assert response["Location"] == opportunity.get_absolute_url()
    assert (opportunity.owner, opportunity.team) == (minh, sales["hanoi"])
    assert list(rep.get("/sales/queue/").context["leads"]) == []

    response = rep.post(
        f"/opportunities/{opportunity.pk}/move/", {"to_stage": "negotiation"}
    )
    assert response.status_code == 302
    response = rep.post(f"/opportunities/{opportunity.pk}/move/", {"to_stage": "won"})
    assert response.status_code == 302

    # 6. The outcome: a customer, with the whole way kept.
    lead.refresh_from_db()
    opportunity.refresh_from_db()
    assert lead.status == "customer"
    assert lead.level == "sql"
    assert (opportunity.stage, opportunity.amount) == ("won", 250_000_000)
    assert opportunity.closed_at is not None
    assert list(
        opportunity.stage_changes.order_by("created_at", "pk").values_list(
            "from_stage", "to_stage", "changed_by"
        )
    ) == [
        ("", "qualification", minh.pk),
        ("qualification", "negotiation", minh.pk),
        ("negotiation", "won", minh.pk),
    ]
    assert list(
        LevelChange.objects.filter(lead=lead)
        .order_by("created_at", "pk")
        .values_list("from_level", "to_level", "rule")
    ) == [
        ("", "iql", "contact_details_known"),
        ("iql", "mql", "mql_threshold"),
        ("mql", "sql", "sql_bant_confirmed"),
    ]
    assert lead.interactions.filter(kind="demo_request").count() == 1
    assert lead.interactions.filter(kind="sales_call").count() == 1
    assert Assignment.objects.count() == 1
    assert messages_to(mail_dir, "minh@example.vn") == 1
    assert "ERROR" not in worker.log()
