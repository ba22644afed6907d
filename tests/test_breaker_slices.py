"""Attacks on the sliced bulk rescore and its one-statement batch write."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from leads.models import Bant, Lead
from leads.services import LeadData, lead_ingest

pytestmark = pytest.mark.postgres


def _wait_for_lock_waiter(timeout: float = 10.0) -> None:
    """Until some other backend waits on a row lock of the leads table."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                " AND query ILIKE '%%FOR UPDATE%%'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError("the rescore never waited on the lead's lock")


def _in_thread(target, errors: list) -> threading.Thread:
    def run():
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_first_bant_fact_committed_while_a_rescore_waits_is_not_lost(monkeypatch):
    """A rescore that waits on the lead's lock while sales records the
    lead's first BANT fact must score that fact once it gets the lock.

    The lock statement also computes `has_bant` with EXISTS; under READ
    COMMITTED that subquery keeps the snapshot the statement started with,
    so after the wait it still says "no BANT" and the BANT rows are never
    read. The rescore then clears score_stale, so the recompute queued by
    the BANT change finds nothing to do: the lead keeps a score without its
    BANT points (until the nightly rescore).
    """
    from leads import services as lead_services
    from scoring.services import rescore_one
    from scoring.tasks import recompute_lead

    lead = lead_ingest(data=LeadData(email="an@vinatech.vn"), announce=False).lead
    rescore_one(lead_id=lead.pk)
    assert Lead.objects.get(pk=lead.pk).bant_score == 0

    # The BANT change's announcement queues a recompute; it runs after the
    # race, as a worker would pick it up.
    announced = []
    monkeypatch.setattr(lead_services, "_announce", announced.append)

    locked = threading.Event()
    release = threading.Event()
    errors: list = []

    def record_bant():
        with transaction.atomic():
            lead_services.lead_bant_set(
                lead_id=lead.pk, criterion="need", confirmed=False, text="CRM"
            )
            locked.set()
            assert release.wait(20)

    sales = _in_thread(record_bant, errors)
    assert locked.wait(20)
    rescorer = _in_thread(lambda: rescore_one(lead_id=lead.pk), errors)
    _wait_for_lock_waiter()
    release.set()
    sales.join(20)
    rescorer.join(20)
    assert not errors, errors

    assert announced == [lead.pk]
    recompute_lead(lead.pk)  # the queued task, as the worker runs it

    stored = Lead.objects.get(pk=lead.pk)
    assert Bant.objects.filter(lead=stored).count() == 1
    assert stored.bant_score == 5, stored.score_breakdown


@pytest.mark.django_db
def test_a_batch_of_scattered_leads_reads_only_their_own_bant_rows(monkeypatch):
    """rescore_stale_many (a drained batch of posts: new leads and old ones
    coming back) and the stale sweeper (ordered by updated_at) hand
    rescore_batch ids far apart. `_bant_rows` then reads every BANT row
    between the smallest and largest id with BANT facts, i.e. up to the
    whole BANT table, for each batch of two leads."""
    from scoring import services
    from scoring.services import rescore_stale_many

    ids = [
        lead_ingest(data=LeadData(email=f"x{n}@vinatech.vn"), announce=False).lead.pk
        for n in range(40)
    ]
    Bant.objects.bulk_create(
        Bant(lead_id=lead_id, criterion="need", status="stated", text="CRM")
        for lead_id in ids
    )
    Lead.objects.update(score_stale=False)
    Lead.objects.filter(pk__in=[ids[0], ids[-1]]).update(score_stale=True)

    read = []
    real = services.bant_facts

    def counting(rows):
        rows = list(rows)
        read.append(len(rows))
        return real(rows)

    monkeypatch.setattr(services, "bant_facts", counting)
    assert rescore_stale_many(lead_ids=[ids[0], ids[-1]]) == 2

    assert read == [2]  # got [40]: the BANT rows of all 38 leads in between


def test_the_rule_memo_does_not_grow_with_every_subject_ever_scored():
    """Rules.engagement_rule_for memoises per (kind, campaign, subject) on
    the Rules object, which lives for the whole worker process
    (DEFAULT_RULES is module-level, rules_for_version caches every version).
    Subjects come from outside (form posts' document names, clicked URLs,
    page paths), so every distinct one ever scored stays in memory."""
    from scoring import engine
    from scoring.rules import DEFAULT_RULES

    rules = engine.Rules(
        version=1,
        engagement=DEFAULT_RULES.engagement,
        fit=(),
    )
    for n in range(20_000):
        activity = engine.Activity(
            "page_visit", 1, 1.0, 1.0, None, f"https://vinatech.vn/?utm_id={n}"
        )
        engine.score_engagement([activity], rules)

    assert len(rules._rule_memo) < 1_000  # got 20,000, one a subject
