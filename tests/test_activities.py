from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from leads.activities import ActivityInput, activity_log, task_reminders_send
from leads.models import Activity, Interaction, LeadQuerySet
from leads.tasks import send_task_reminders
from tests.sales_helpers import mql_lead

HTMX = {"HTTP_HX_REQUEST": "true"}
# A morning in Hanoi: "today" is the local day.
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))


@pytest.fixture
def rep(make_user):
    return make_user("rep", role="Sales rep")


@pytest.fixture
def rep_client(client, rep):
    client.force_login(rep)
    return client


def _log_url(lead) -> str:
    return reverse("leads:activity_create", args=[lead.pk])


def _task(lead, rep, *, due, remind=None, subject="Send the quote") -> Activity:
    return activity_log(
        lead_id=lead.pk,
        by=rep,
        data=ActivityInput(kind="task", subject=subject, due_at=due, remind_at=remind),
    )


@pytest.mark.django_db
def test_a_logged_call_is_an_interaction_that_rescores_the_lead(
    rep_client, make_lead, django_capture_on_commit_callbacks, rep
):
    lead = mql_lead(make_lead, owner=rep)
    engagement_before = lead.engagement_score

    with django_capture_on_commit_callbacks(execute=True):
        response = rep_client.post(
            _log_url(lead),
            {
                "activity-kind": "call",
                "activity-subject": "Discovery call",
                "activity-body": "Wants a demo for the sales team",
            },
            **HTMX,
        )

    lead.refresh_from_db()
    activity = lead.activities.get()
    interaction = activity.interaction
    assert response.status_code == 200
    assert 'id="activities"' in response.content.decode()
    assert "Call logged." in response.content.decode()
    assert (interaction.kind, interaction.channel) == ("sales_call", "manual")
    assert interaction.subject == "Discovery call"
    assert interaction.details == {"activity": "call"}
    assert lead.engagement_score > engagement_before
    assert not lead.score_stale
    assert lead.first_contacted_at == activity.occurred_at


@pytest.mark.django_db
def test_the_first_contact_time_is_kept_by_later_contacts(rep, make_lead):
    lead = mql_lead(make_lead, owner=rep)
    # After the lead became MQL: contact from before the hand-off is not
    # what the first-contact clock waits for.
    first = timezone.now()

    for kind, when in (("meeting", first), ("email", None)):
        activity_log(
            lead_id=lead.pk,
            by=rep,
            data=ActivityInput(kind=kind, subject="Follow-up", occurred_at=when),
        )

    lead.refresh_from_db()
    assert lead.first_contacted_at == first
    assert lead.interactions.filter(kind="sales_call").count() == 2


@pytest.mark.django_db
def test_notes_and_tasks_are_not_contacts(rep, make_lead):
    lead = mql_lead(make_lead, owner=rep)
    interactions_before = Interaction.objects.count()

    activity_log(lead_id=lead.pk, by=rep, data=ActivityInput(kind="note", subject="Hi"))
    _task(lead, rep, due=timezone.now() + timedelta(days=1))

    lead.refresh_from_db()
    assert Interaction.objects.count() == interactions_before
    assert lead.first_contacted_at is None
    assert lead.activities.count() == 2


@pytest.mark.django_db
def test_a_task_needs_a_due_time_and_the_form_says_so(rep_client, make_lead, rep):
    lead = mql_lead(make_lead, owner=rep)

    response = rep_client.post(
        _log_url(lead), {"activity-kind": "task", "activity-subject": "Call back"}
    )

    form = response.context["activity_form"]
    assert response.status_code == 200
    assert form.errors["due_at"] == ["A task needs a due date and time."]
    assert 'class="collapse show" id="activity-panel"' in response.content.decode()
    assert not lead.activities.exists()


@pytest.mark.django_db
def test_a_contact_cannot_be_logged_in_the_future(rep_client, make_lead, rep):
    lead = mql_lead(make_lead, owner=rep)
    tomorrow = timezone.localtime() + timedelta(days=1)

    response = rep_client.post(
        _log_url(lead),
        {
            "activity-kind": "call",
            "activity-subject": "Call",
            "activity-occurred_at": tomorrow.strftime("%Y-%m-%dT%H:%M"),
        },
        **HTMX,
    )

    assert "cannot be in the future" in response.content.decode()
    assert not lead.activities.exists()
    assert not lead.interactions.filter(kind="sales_call").exists()


@pytest.mark.django_db
def test_a_task_reminder_defaults_to_the_due_time_and_may_not_come_after(
    rep, make_lead
):
    lead = mql_lead(make_lead, owner=rep)
    due = timezone.now() + timedelta(days=1)

    task = _task(lead, rep, due=due)
    with pytest.raises(Exception) as refused:
        _task(lead, rep, due=due, remind=due + timedelta(minutes=1))

    assert task.remind_at == due
    assert task.assigned_to == rep
    assert "before the task is due" in str(refused.value)


@pytest.mark.django_db
def test_the_task_list_shows_what_is_due_today_and_overdue(
    rep_client, rep, make_user, make_lead
):
    other_rep = make_user("other", role="Sales rep")
    lead = mql_lead(make_lead, owner=rep)
    with time_machine.travel(NOW, tick=False):
        _task(lead, rep, due=NOW - timedelta(days=1), subject="Overdue quote")
        _task(lead, rep, due=NOW + timedelta(hours=5), subject="Call this afternoon")
        _task(lead, rep, due=NOW + timedelta(days=2), subject="Next week demo")
        _task(lead, other_rep, due=NOW, subject="Someone else's task")

        today = rep_client.get(reverse("leads:tasks"))
        overdue = rep_client.get(reverse("leads:tasks"), {"when": "overdue"})
        upcoming = rep_client.get(reverse("leads:tasks"), {"when": "upcoming"})

    def subjects(response):
        return [task.subject for task in response.context["page_obj"]]

    assert subjects(today) == ["Overdue quote", "Call this afternoon"]
    assert subjects(overdue) == ["Overdue quote"]
    assert subjects(upcoming) == ["Next week demo"]
    assert 'class="table-danger"' in today.content.decode()


@pytest.mark.django_db
def test_a_task_reminder_is_sent_once_and_shown_until_done(rep_client, rep, make_lead):
    rep.email = "rep@example.vn"
    rep.save()
    lead = mql_lead(make_lead, owner=rep)
    with time_machine.travel(NOW, tick=False):
        task = _task(
            lead, rep, due=NOW + timedelta(hours=2), remind=NOW + timedelta(hours=1)
        )
        early = task_reminders_send()
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        on_time = send_task_reminders.apply().get()
        again = task_reminders_send()
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        next_day = task_reminders_send()
        page = rep_client.get(reverse("leads:tasks"))

    task.refresh_from_db()
    assert (early, on_time, again, next_day) == (0, 1, 0, 0)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["rep@example.vn"]
    assert "Send the quote" in mail.outbox[0].subject
    assert task.reminder_sent_at == NOW + timedelta(hours=1)
    assert [t.subject for t in page.context["reminders"]] == ["Send the quote"]


@pytest.mark.django_db
def test_a_done_task_is_not_reminded(rep, make_lead):
    rep.email = "rep@example.vn"
    rep.save()
    lead = mql_lead(make_lead, owner=rep)
    with time_machine.travel(NOW, tick=False):
        task = _task(lead, rep, due=NOW + timedelta(hours=1))
        task.completed_at = NOW
        task.save()
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        sent = task_reminders_send()

    assert sent == 0
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_failed_reminder_is_tried_again(rep, make_lead, monkeypatch):
    rep.email = "rep@example.vn"
    rep.save()
    lead = mql_lead(make_lead, owner=rep)
    task = _task(lead, rep, due=timezone.now() - timedelta(minutes=1))

    def broken(*args, **kwargs):
        raise OSError("SMTP down")

    with monkeypatch.context() as patched:
        patched.setattr("leads.activities.send_mail", broken)
        failed = task_reminders_send()
    retried = task_reminders_send()

    task.refresh_from_db()
    assert (failed, retried) == (0, 1)
    assert task.reminder_sent_at is not None
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_completing_a_task_with_htmx_updates_its_row_and_twice_is_refused(
    rep_client, rep, make_lead
):
    lead = mql_lead(make_lead, owner=rep)
    task = _task(lead, rep, due=timezone.now() + timedelta(hours=1))
    url = reverse("leads:task_complete", args=[task.pk])

    done = rep_client.post(url, {}, **HTMX)
    twice = rep_client.post(url, {}, **HTMX)

    task.refresh_from_db()
    assert task.completed_by == rep
    assert done.content.decode().lstrip().startswith(f'<tr id="task-{task.pk}"')
    assert "Done" in done.content.decode()
    assert "The task is done already." in twice.content.decode()


@pytest.mark.django_db
def test_completing_from_the_lead_page_answers_with_the_activities(
    rep_client, rep, make_lead
):
    lead = mql_lead(make_lead, owner=rep)
    task = _task(lead, rep, due=timezone.now() + timedelta(hours=1))

    response = rep_client.post(
        reverse("leads:task_complete", args=[task.pk]), {"from": "lead"}, **HTMX
    )

    assert 'id="activities"' in response.content.decode()
    assert "text-decoration-line-through" in response.content.decode()


@pytest.mark.django_db
def test_a_marketer_sees_activities_but_may_not_log_or_complete(
    client, make_user, rep, make_lead
):
    marketer = make_user("marketer2", role="Marketer")
    client.force_login(marketer)
    lead = mql_lead(make_lead, owner=rep)
    task = _task(lead, rep, due=timezone.now())

    page = client.get(lead.get_absolute_url()).content.decode()
    logged = client.post(
        _log_url(lead), {"activity-kind": "note", "activity-subject": "x"}
    )
    completed = client.post(reverse("leads:task_complete", args=[task.pk]))

    assert "Send the quote" in page
    assert 'name="activity-kind"' not in page
    assert logged.status_code == completed.status_code == 403


@pytest.mark.django_db
def test_activity_urls_of_a_lead_out_of_sight_are_404(
    rep_client, rep, make_lead, monkeypatch
):
    lead = mql_lead(make_lead, owner=rep)
    task = _task(lead, rep, due=timezone.now())
    monkeypatch.setattr(LeadQuerySet, "visible_to", lambda self, user: self.none())

    logged = rep_client.post(
        _log_url(lead), {"activity-kind": "note", "activity-subject": "x"}
    )
    completed = rep_client.post(reverse("leads:task_complete", args=[task.pk]))
    tasks = rep_client.get(reverse("leads:tasks"), {"when": "open"})

    assert logged.status_code == completed.status_code == 404
    assert list(tasks.context["page_obj"]) == []
    assert not Activity.objects.filter(kind="note").exists()


@pytest.mark.django_db
def test_the_task_list_runs_the_same_queries_for_2_or_20_tasks(
    client, rep, make_lead, django_assert_max_num_queries
):
    client.force_login(rep)
    lead = mql_lead(make_lead, owner=rep)
    for number in range(2):
        _task(lead, rep, due=timezone.now(), subject=f"Task {number}")
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("leads:tasks"))
    for number in range(18):
        _task(lead, rep, due=timezone.now(), subject=f"More {number}")

    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("leads:tasks"))
