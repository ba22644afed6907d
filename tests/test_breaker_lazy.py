"""Breaker: a tester's attacks on the wake-up, the drain's stop rule and
rescore slices sent a few at a time. Each test failed on a real defect."""

import json
import random
import time
import uuid

import pytest
import redis

from campaigns import ratelimit
from campaigns import services as capture
from campaigns.models import Submission, SubmissionStatus
from campaigns.selectors import forget_forms
from campaigns.tasks import drain_submissions
from leadcrm import queue
from scoring.models import JobStatus, RescoreJob, RuleSet
from tests import services
from tests.test_scoring_rules import draft_in_force, stricter_draft
from tests.worker import publishing_to

pytestmark = [pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch):
    forget_forms()
    ratelimit.reset_backoff()
    monkeypatch.setattr(queue, "_held_until", {})
    yield
    ratelimit.reset_backoff()


@pytest.fixture
def wake_queue():
    name = f"test-breaker-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(services.redis_url())
    try:
        with publishing_to(services.redis_url(), name):
            yield name, broker
    finally:
        broker.delete(name, f"leadcrm:wake:{name}:submissions")


def pending(form, payload: dict, **values) -> Submission:
    return Submission.objects.create(form=form, payload=payload, **values)


# --- A poster that read "queued" ----------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_queued_memo_outlives_the_wake_up_taken_back_after_a_failed_publish(
    web_form, wake_queue
):
    # Web process A set the key "queued", then its publish failed, so it
    # took the key back (_UNQUEUE): no drain task exists. Web process B
    # read "queued" in between. B's next post must ask Redis again, find
    # the key unset and publish; a B that remembered "queued" would leave
    # its posts to the sweeper while Redis and the workers are up.
    name, broker = wake_queue
    key = f"leadcrm:wake:{name}:submissions"

    broker.set(key, "queued", ex=30)  # A: the script's SET
    pending(web_form, {"email": "b1@congty.vn"})
    assert queue.wake(drain_submissions, key=capture.WAKE_KEY)  # B reads it
    broker.eval(queue._UNQUEUE, 1, key, "queued")  # A: publish failed
    assert broker.get(key) is None

    pending(web_form, {"email": "b2@congty.vn"})  # B's next post
    queue.wake(drain_submissions, key=capture.WAKE_KEY)

    # Some drain must be on its way for the pending posts.
    assert broker.llen(name) == 1 or broker.get(key) is not None


# --- A drain stops after a small look once its hold ran out -----------------


def limiter(settings, *, per_ip: int) -> None:
    settings.LEADCRM = {
        **settings.LEADCRM,
        "RATE_LIMIT_REDIS_URL": services.redis_url(),
        "RATE_LIMIT_PER_IP": per_ip,
        "RATE_LIMIT_PER_FORM": 600,
    }


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_full_claim_mostly_rate_limited_does_not_end_the_drain_before_later_posts(
    web_form, wake_queue, settings, monkeypatch
):
    # A claim keeps rate-limited (and exhausted) rows out of what it
    # processes, so few posts to process does not mean few were found.
    # A spam burst from one address plus real posts behind it, all posted
    # while the drain held the wake-up (so their posters published
    # nothing): the look after the hold claims a full batch of which one
    # post is processed. The drain must look again, or the real posts
    # behind wait for the sweeper.
    name, broker = wake_queue
    limiter(settings, per_ip=1)
    monkeypatch.setattr(queue, "HOLD_SECONDS", 0.2)
    monkeypatch.setattr(capture, "DRAIN_LINGER", 0.01)
    size = 10  # busy = min(DRAIN_BUSY, size) = 10
    spammer = f"10.{random.randrange(256)}.{random.randrange(256)}.9"
    real = capture._process_claimed
    calls = []

    def process_while_posts_arrive(batch):
        calls.append(len(batch))
        real(batch)
        if len(calls) == 1:
            # Posters during the drain's (renewed) hold: stored, woken, quiet.
            for n in range(size):
                pending(web_form, {"email": f"spam{n}@x.vn"}, remote_addr=spammer)
                assert queue.wake(drain_submissions, key=capture.WAKE_KEY)
            for n in range(3):
                pending(
                    web_form,
                    {"email": f"that{n}@congty.vn"},
                    remote_addr=f"10.9.{n}.{random.randrange(256)}",
                )
                assert queue.wake(drain_submissions, key=capture.WAKE_KEY)
            time.sleep(queue.HOLD_SECONDS + 0.05)  # the batch took a while

    monkeypatch.setattr(capture, "_process_claimed", process_while_posts_arrive)
    for n in range(size):  # a first full batch: the hold is renewed
        pending(
            web_form,
            {"email": f"first{n}@congty.vn"},
            remote_addr=f"10.8.{n}.{random.randrange(256)}",
        )

    capture.submission_drain(batch_size=size)

    # Every poster relied on the hold: no drain task was published.
    messages = [json.loads(raw) for raw in broker.lrange(name, 0, -1)]
    assert not [m for m in messages if m["headers"]["task"] == drain_submissions.name]
    assert broker.get(f"leadcrm:wake:{name}:submissions") is None
    left = Submission.objects.filter(status=SubmissionStatus.PENDING)
    assert list(left.values_list("payload__email", flat=True)) == []


# --- Rescore slices sent a few at a time ----------------------------------------


@pytest.mark.django_db
def test_a_job_whose_rules_were_replaced_ends_instead_of_waiting_for_the_sweeper(
    sent_slices,
):
    # Rules replaced mid-job: each running slice sees it, marks itself done
    # and sends no next slice. Were the never-sent slices left queued, the
    # job would stay RUNNING with no task anywhere, and only the sweeper
    # (heartbeat 300 s, every 300 s) would move it, two slices a sweep:
    # hours for a million leads in slices of 10,000.
    from scoring.rulesets import rescore_job_run, rescore_slice_run

    draft = draft_in_force(emails=9)
    job = RescoreJob.objects.create(rule_set=draft, reason="test", total=9)
    rescore_job_run(job_id=job.pk)
    assert sent_slices

    newer = stricter_draft()
    RuleSet.objects.filter(status="active").update(status="archived")
    RuleSet.objects.filter(pk=newer.pk).update(status="active")

    ran = 0
    while ran < len(sent_slices):
        rescore_slice_run(slice_id=sent_slices[ran])
        ran += 1

    job.refresh_from_db()
    never_sent = job.slices.filter(status=JobStatus.QUEUED, published_at=None)
    assert job.status != JobStatus.RUNNING, (job.status, never_sent.count())
