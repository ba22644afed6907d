"""The capture pipeline end to end: PostgreSQL, Redis and a real worker."""

import threading
import time

import pytest
from django.db import connection
from django.test import Client

from campaigns.models import Submission, SubmissionStatus
from campaigns.services import submission_sweep_pending
from campaigns.tasks import process_submission
from leads.models import Interaction, Lead, LevelChange
from leads.services import LeadData, lead_ingest
from tests import services
from tests.worker import (
    RedisServer,
    WorkerProcess,
    publishing_to,
    running_worker,
    wait_for,
)

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

FULL_PROFILE = {
    "email": "thao.dang@vinatech.vn",
    "phone": "0903 123 456",
    "full_name": "Đặng Thu Thảo",
    "company": "VinaTech",
    "job_title": "Giám đốc marketing",
    "city": "Hồ Chí Minh",
}


@pytest.fixture
def demo_form(web_form):
    # A demo request is worth enough to make a complete profile an MQL.
    web_form.interaction_kind = "demo_request"
    web_form.save()
    return web_form


@pytest.fixture
def worker(tmp_path, django_db_blocker):
    with running_worker(services.redis_url(), tmp_path) as process:
        yield process


def all_processed(count: int):
    def check():
        done = Submission.objects.filter(status=SubmissionStatus.PROCESSED).count()
        stale = Lead.objects.filter(score_stale=True).exists()
        return done == count and not stale

    return check


def test_a_form_post_becomes_a_scored_lead_with_a_level(demo_form, worker):
    response = Client().post("/f/ebook/", FULL_PROFILE, HTTP_ACCEPT="application/json")

    assert response.status_code == 202
    wait_for(all_processed(1), timeout=30, what="the worker to process the post")
    lead = Lead.objects.get()
    assert lead.email == "thao.dang@vinatech.vn"
    assert lead.phone == "+84903123456"
    assert lead.level == "mql"
    # Demo request, email, phone, name, company, job title, city, and the
    # title "Giám đốc" states authority.
    assert lead.score == 40 + 10 + 10 + 5 + 10 + 10 + 5 + 5
    assert list(
        LevelChange.objects.filter(lead=lead).values_list("to_level", "rule")
    ) == [("mql", "mql_threshold"), ("iql", "contact_details_known")]


def test_twenty_concurrent_first_posts_make_one_lead(demo_form, worker):
    statuses: list[int] = []
    barrier = threading.Barrier(20)

    def post(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            response = Client().post(
                "/f/ebook/",
                {"email": "New.Person@Example.com", "note": str(n)},
                HTTP_ACCEPT="application/json",
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [202] * 20
    wait_for(all_processed(20), timeout=60, what="twenty submissions")
    assert Lead.objects.count() == 1
    assert Interaction.objects.count() == 20
    assert "ERROR" not in worker.log()


def test_a_redelivered_task_changes_nothing(demo_form, worker):
    Client().post("/f/ebook/", FULL_PROFILE, HTTP_ACCEPT="application/json")
    wait_for(all_processed(1), timeout=30, what="the first delivery")
    submission = Submission.objects.get()
    lead = Lead.objects.get()
    before = (lead.score, lead.level, Interaction.objects.count())

    # A broker redelivers after a lost acknowledgement; the worst case is a
    # task that finds its submission pending again.
    Submission.objects.filter(pk=submission.pk).update(status="pending")
    process_submission.delay(submission.pk)
    process_submission.delay(submission.pk)
    wait_for(all_processed(1), timeout=30, what="the redelivered task")
    time.sleep(1)

    lead.refresh_from_db()
    assert (lead.score, lead.level, Interaction.objects.count()) == before
    assert Lead.objects.count() == 1


@pytest.fixture
def private_redis(tmp_path):
    if services.missing("redis") is None and not _has_redis_server():
        pytest.fail("redis-server is needed to stop and restart a private broker")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def _has_redis_server() -> bool:
    import shutil

    return shutil.which("redis-server") is not None


def test_with_redis_down_capture_answers_fast_and_nothing_is_lost(
    demo_form, private_redis, tmp_path, settings
):
    settings.LEADCRM = {**settings.LEADCRM, "SWEEP_AFTER_SECONDS": 0}
    worker = WorkerProcess(private_redis.url, tmp_path)
    worker.start()
    try:
        with publishing_to(worker.broker_url, worker.queue):
            private_redis.stop()

            started = time.monotonic()
            response = Client().post(
                "/f/ebook/", FULL_PROFILE, HTTP_ACCEPT="application/json"
            )
            elapsed = time.monotonic() - started

            assert response.status_code == 202
            assert elapsed < 2.0
            assert Submission.objects.get().status == SubmissionStatus.PENDING
            assert submission_sweep_pending() == 0  # the broker is still down

            private_redis.start()
            wait_for(submission_sweep_pending, timeout=30, what="a re-enqueue")
            wait_for(all_processed(1), timeout=60, what="processing after restart")
    finally:
        worker.stop()

    lead = Lead.objects.get()
    assert lead.level == "mql"
    assert lead.interactions.count() == 1


@pytest.fixture
def slicing_worker(tmp_path, monkeypatch, django_db_blocker):
    # Slices of three lead ids, so ten leads make a job of four tasks that
    # the worker's two processes share.
    monkeypatch.setenv("LEADCRM_RESCORE_SLICE_SPAN", "3")
    with running_worker(services.redis_url(), tmp_path) as process:
        yield process


def test_a_rule_change_is_rescored_by_the_worker_in_slices(slicing_worker):
    from scoring.models import FitRule, JobStatus, RescoreJob
    from scoring.rulesets import rule_set_activate, rule_set_draft

    for n in range(10):
        lead_ingest(data=LeadData(email=f"lead{n}@vinatech.vn"), announce=False)
    draft = rule_set_draft(name="Company mail counts")
    FitRule.objects.create(
        rule_set=draft, field="email", operator="company_mail", points=7
    )

    job = rule_set_activate(rule_set=draft)

    wait_for(
        lambda: RescoreJob.objects.get(pk=job.pk).status == JobStatus.DONE,
        timeout=60,
        what="the worker to finish the rescore job",
    )
    job.refresh_from_db()
    assert (job.done, job.total) == (10, 10)
    assert list(job.slices.values_list("status", flat=True)) == ["done"] * 4
    assert set(Lead.objects.values_list("score_version", flat=True)) == {draft.pk}
    # The default rules give 10 for an email; the new rule 7 more.
    assert set(Lead.objects.values_list("fit_score", flat=True)) == {17}
