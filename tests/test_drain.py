"""A worker drains pending submissions in batches: leases, failures, wake-ups."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.utils import timezone

from campaigns import services as capture
from campaigns.models import Submission, SubmissionStatus
from campaigns.tasks import drain_submissions
from leadcrm import queue
from leadcrm.queue import wake, wake_hold
from leads.models import Interaction, Lead
from scoring import services as scoring
from tests import services
from tests.worker import publishing_to

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def pending(form, *emails: str) -> list[Submission]:
    return [
        Submission.objects.create(
            form=form, payload={"email": email, "full_name": "Lê Văn Tám"}
        )
        for email in emails
    ]


@pytest.fixture
def rescore_calls(monkeypatch):
    calls: list[list[int]] = []
    original = scoring.rescore_batch

    def spy(lead_ids, **kwargs):
        calls.append(list(lead_ids))
        return original(lead_ids, **kwargs)

    monkeypatch.setattr(scoring, "rescore_batch", spy)
    return calls


def test_a_drain_processes_every_pending_submission_a_batch_at_a_time(
    web_form, monkeypatch, rescore_calls
):
    monkeypatch.setattr(capture, "DRAIN_BATCH", 3)
    pending(web_form, *(f"lead{i}@congty.vn" for i in range(7)))

    # As a worker runs it: inside a task, so each batch's leads are scored
    # together right after the batch.
    drained = drain_submissions.apply().get()

    assert drained == 7
    assert Submission.objects.filter(status=SubmissionStatus.PROCESSED).count() == 7
    assert Lead.objects.count() == 7
    assert not Lead.objects.filter(score_stale=True).exists()
    assert [len(batch) for batch in rescore_calls] == [3, 3, 1]
    assert Submission.objects.filter(attempts=1).count() == 7


def test_a_leased_submission_is_left_alone_until_its_lease_ends(web_form):
    held, free = pending(web_form, "held@congty.vn", "free@congty.vn")
    Submission.objects.filter(pk=held.pk).update(
        leased_until=timezone.now() + timedelta(seconds=60)
    )

    assert capture.submission_drain() == 1
    held.refresh_from_db()
    assert held.status == SubmissionStatus.PENDING
    assert held.attempts == 0

    # The worker holding it died: once the lease runs out it is taken again.
    Submission.objects.filter(pk=held.pk).update(
        leased_until=timezone.now() - timedelta(seconds=1)
    )
    assert capture.submission_drain() == 1
    held.refresh_from_db()
    assert held.status == SubmissionStatus.PROCESSED
    assert held.attempts == 1


def test_a_failing_submission_holds_back_nothing_and_is_given_up_in_the_end(
    web_form, monkeypatch
):
    bad, good = pending(web_form, "bad@congty.vn", "good@congty.vn")
    ingest = capture.lead_ingest_many

    def flaky(*, items):
        if any(item.data.email == "bad@congty.vn" for item in items):
            raise RuntimeError("the database hiccupped")
        return ingest(items=items)

    monkeypatch.setattr(capture, "lead_ingest_many", flaky)

    capture.submission_drain()

    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.status == SubmissionStatus.PROCESSED
    assert bad.status == SubmissionStatus.PENDING
    assert "the database hiccupped" in bad.error
    assert Interaction.objects.count() == 1

    for _attempt in range(capture.MAX_ATTEMPTS):
        Submission.objects.filter(pk=bad.pk).update(leased_until=None)
        capture.submission_drain()

    bad.refresh_from_db()
    assert bad.status == SubmissionStatus.FAILED
    assert bad.attempts == capture.MAX_ATTEMPTS + 1
    assert bad.error.startswith(f"Gave up after {capture.MAX_ATTEMPTS} attempts.")
    assert "the database hiccupped" in bad.error


@pytest.mark.redis
def test_a_burst_of_posts_publishes_one_wake_up_and_a_draining_hold_quiets_posters(
    monkeypatch,
):
    monkeypatch.setattr(queue, "HOLD_SECONDS", 30)
    name = f"test-wake-{uuid.uuid4().hex[:8]}"
    key = f"leadcrm:wake:{name}:submissions"
    broker = redis.Redis.from_url(services.redis_url())
    try:
        with publishing_to(services.redis_url(), name):
            for _post in range(5):
                assert wake(drain_submissions, key="submissions")
            assert broker.llen(name) == 1
            assert broker.get(key) == b"queued"

            held_until = wake_hold(drain_submissions, key="submissions")
            assert held_until > time.monotonic() + 29
            assert wake(drain_submissions, key="submissions")
            # This process read the drain's promise and keeps to it without
            # asking the broker again.
            broker.delete(key)
            assert wake(drain_submissions, key="submissions")
            assert broker.llen(name) == 1

            # Another process, which never read it, finds no wake-up waiting.
            monkeypatch.setattr(queue, "_held_until", {})
            assert wake(drain_submissions, key="submissions")
            assert broker.llen(name) == 2
    finally:
        broker.delete(name, key)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_drain_looks_again_after_its_hold_runs_out_before_it_stops(
    web_form, monkeypatch
):
    monkeypatch.setattr(queue, "HOLD_SECONDS", 1.0)
    monkeypatch.setattr(capture, "DRAIN_LINGER", 0.05)
    pending(web_form, "first@congty.vn")

    def post_late():
        # A post whose poster saw the hold and published nothing.
        time.sleep(0.5)
        try:
            pending(web_form, "late@congty.vn")
        finally:
            connection.close()

    name = f"test-hold-{uuid.uuid4().hex[:8]}"
    late = threading.Thread(target=post_late)
    try:
        with publishing_to(services.redis_url(), name):
            late.start()
            drained = capture.submission_drain()
    finally:
        late.join()
        redis.Redis.from_url(services.redis_url()).delete(
            name, f"leadcrm:wake:{name}:submissions"
        )

    assert drained == 2
    assert Submission.objects.filter(status=SubmissionStatus.PROCESSED).count() == 2


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_at_a_trickle_of_posts_a_drain_lets_its_hold_run_out_and_stops(
    web_form, monkeypatch
):
    monkeypatch.setattr(queue, "HOLD_SECONDS", 0.3)
    monkeypatch.setattr(capture, "DRAIN_LINGER", 0.05)
    stop = threading.Event()

    def trickle():
        # Twenty posts a second, for as long as the test wants them.
        try:
            n = 0
            while not stop.is_set() and n < 100:
                pending(web_form, f"trickle{n}@congty.vn")
                n += 1
                time.sleep(0.05)
        finally:
            connection.close()

    name = f"test-trickle-{uuid.uuid4().hex[:8]}"
    poster = threading.Thread(target=trickle)
    try:
        with publishing_to(services.redis_url(), name):
            poster.start()
            time.sleep(0.1)
            started = time.monotonic()
            drained = capture.submission_drain()
            took = time.monotonic() - started
            time.sleep(0.2)
            assert poster.is_alive()
    finally:
        stop.set()
        poster.join()
        redis.Redis.from_url(services.redis_url()).delete(
            name, f"leadcrm:wake:{name}:submissions"
        )

    # It gave its worker back while posts still came, a new drain's work.
    assert took < 1.5
    assert drained >= 2
    processed = Submission.objects.filter(status=SubmissionStatus.PROCESSED).count()
    assert processed == drained < Submission.objects.count()


@pytest.mark.redis
def test_with_the_broker_unreachable_a_wake_up_fails_fast_and_says_so():
    with publishing_to("redis://127.0.0.1:1/0", f"test-{uuid.uuid4().hex[:8]}"):
        assert wake(drain_submissions, key="submissions") is False
