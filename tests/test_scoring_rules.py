"""Rules as data: operators, caps, narrowing, BANT, versions, preview."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from leads.models import Interaction, Lead, LevelChange
from leads.services import (
    InteractionData,
    LeadData,
    lead_bant_set,
    lead_disqualify,
    lead_ingest,
    lead_move,
    lead_recycle,
    lead_reopen,
)
from scoring import engine
from scoring.models import FitRule, JobStatus, RescoreJob, RuleSet
from scoring.rulesets import rule_set_activate, rule_set_draft
from scoring.services import rules_preview, score_recompute

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TODAY = NOW.date()


def rules(**overrides) -> engine.Rules:
    values = {
        "version": 1,
        "engagement": (),
        "fit": (),
        "bant": engine.BantPolicy(
            budget_min=Decimal("50000000"),
            authority_keywords=("giám đốc", "trưởng phòng", "director"),
            sql_min_confirmed=3,
            sql_required=("budget", "need"),
        ),
    }
    values.update(overrides)
    return engine.Rules(**values)


def fit_rule(operator, field="job_title", points=10, **kwargs) -> engine.FitRule:
    return engine.FitRule(
        key="r", field=field, operator=operator, points=points, **kwargs
    )


@pytest.mark.parametrize(
    ("rule", "profile", "matches"),
    [
        (fit_rule("filled"), {"job_title": "CTO"}, True),
        (fit_rule("filled"), {"job_title": ""}, False),
        (fit_rule("equals", values=("ha noi",)), {"job_title": "Hà Nội"}, True),
        (fit_rule("equals", values=("Hà Nội",)), {"job_title": "Hải Phòng"}, False),
        (
            fit_rule("one_of", values=("Hà Nội", "Đà Nẵng")),
            {"job_title": "đà nẵng"},
            True,
        ),
        (
            fit_rule("contains", values=("giám đốc",)),
            {"job_title": "Phó Giám Đốc"},
            True,
        ),
        (fit_rule("contains", values=("giám đốc",)), {"job_title": "Kế toán"}, False),
        (
            fit_rule("range", field="custom.size", low=50, high=500),
            {"custom.size": "120"},
            True,
        ),
        (
            fit_rule("range", field="custom.size", low=50, high=500),
            {"custom.size": 500},
            False,
        ),
        (fit_rule("range", field="custom.size", low=50), {"custom.size": "n/a"}, False),
        (fit_rule("free_mail", field="email"), {"email": "an@gmail.com"}, True),
        (fit_rule("company_mail", field="email"), {"email": "an@vinatech.vn"}, True),
        (fit_rule("company_mail", field="email"), {"email": ""}, False),
    ],
)
def test_each_fit_operator(rule, profile, matches):
    assert rule.matches(profile) is matches


def test_negative_fit_points_take_away():
    result = engine.score(
        profile={"email": "an@gmail.com"},
        activity=(),
        rules=rules(fit=(fit_rule("free_mail", field="email", points=-5),)),
        today=TODAY,
    )

    assert result.fit == -5


def events(kind, times, subject="", campaign_id=None):
    return [(kind, 1, when, campaign_id, subject) for when in times]


def test_a_window_cap_limits_bursts_but_not_steady_interest():
    rule = engine.EngagementRule(
        key="v", kind="page_visit", points=5, cap=100, window_cap=10
    )
    r = rules(engagement=(rule,), half_life_days=10_000, window_days=7)
    burst = events("page_visit", [NOW - timedelta(minutes=m) for m in range(10)])
    weekly = events("page_visit", [NOW - timedelta(days=7 * w) for w in range(5)])

    burst_points = engine.score_engagement(engine.aggregate(burst, now=NOW, rules=r), r)
    weekly_points = engine.score_engagement(
        engine.aggregate(weekly, now=NOW, rules=r), r
    )

    assert round(burst_points[0]) == 10
    assert round(weekly_points[0]) == 25


def test_the_most_specific_rule_wins():
    general = engine.EngagementRule(key="any", kind="document_download", points=5)
    pricing = engine.EngagementRule(
        key="pricing", kind="document_download", points=30, subject="Bảng giá 2027"
    )
    r = rules(engagement=(general, pricing))
    log = events("document_download", [NOW], subject="bảng giá 2027") + events(
        "document_download", [NOW], subject="Ebook"
    )

    _, _, lines = engine.score_engagement(engine.aggregate(log, now=NOW, rules=r), r)

    assert {line.rule: line.points for line in lines} == {"pricing": 30, "any": 5}


def test_campaign_narrowing():
    rule = engine.EngagementRule(key="c", kind="form_submit", points=20, campaign_id=7)
    r = rules(engagement=(rule,))

    inside = engine.aggregate(
        events("form_submit", [NOW], campaign_id=7), now=NOW, rules=r
    )
    outside = engine.aggregate(
        events("form_submit", [NOW], campaign_id=8), now=NOW, rules=r
    )

    assert engine.score_engagement(inside, r)[0] == 20
    assert engine.score_engagement(outside, r)[0] == 0


def bant(criterion, status, **kwargs):
    return {criterion: engine.BantFact(criterion=criterion, status=status, **kwargs)}


def test_stated_bant_gives_points_but_only_confirmed_makes_sql():
    stated = {
        **bant("budget", "stated", amount=Decimal("80000000"), currency="VND"),
        **bant("need", "stated", text="CRM cho 20 người"),
        **bant("timeline", "stated", date=TODAY + timedelta(days=30)),
    }
    confirmed = {
        key: engine.BantFact(**{**fact.__dict__, "status": "confirmed"})
        for key, fact in stated.items()
    }

    as_stated = engine.score(
        profile={}, activity=(), rules=rules(), bant=stated, today=TODAY
    )
    as_confirmed = engine.score(
        profile={}, activity=(), rules=rules(), bant=confirmed, today=TODAY
    )

    assert (as_stated.bant, as_stated.level) == (15, "iql")
    assert (as_confirmed.bant, as_confirmed.level) == (45, "sql")
    assert as_confirmed.level_rule == "sql_bant_confirmed"


@pytest.mark.parametrize(
    ("fact", "met"),
    [
        (
            bant("budget", "confirmed", amount=Decimal("49999999"), currency="VND"),
            False,
        ),
        (bant("budget", "confirmed", amount=Decimal("50000000"), currency="vnd"), True),
        (bant("budget", "confirmed", amount=Decimal("9000"), currency="USD"), False),
        (bant("timeline", "confirmed", date=TODAY + timedelta(days=91)), False),
        (bant("timeline", "confirmed", date=TODAY - timedelta(days=1)), False),
        (bant("authority", "stated", text="Trưởng phòng kinh doanh"), True),
        (bant("need", "confirmed", text="  "), False),
    ],
)
def test_bant_criteria_are_checked_against_the_policy(fact, met):
    found = engine.bant_met(fact, {}, rules().bant, TODAY)

    assert bool(found) is met


def test_a_decision_makers_job_title_states_authority():
    found = engine.bant_met(
        {}, {"job_title": "Giam doc dieu hanh"}, rules().bant, TODAY
    )

    assert found == {"authority": "stated"}


def test_disqualified_and_recycled_leads_are_not_promoted():
    r = rules(mql_total=10, mql_min_fit=0, fit=(fit_rule("filled", points=20),))
    profile = {"job_title": "CTO"}

    disqualified = engine.score(
        profile=profile, activity=(), rules=r, today=TODAY,
        state=engine.LeadState(level="iql", disqualified=True),
    )  # fmt: skip
    recycled_quiet = engine.score(
        profile=profile, activity=(), rules=r, today=TODAY,
        state=engine.LeadState(level="iql", recycled_at=NOW, last_interaction_at=NOW),
    )  # fmt: skip
    recycled_active = engine.score(
        profile=profile, activity=(), rules=r, today=TODAY,
        state=engine.LeadState(
            level="iql", recycled_at=NOW, last_interaction_at=NOW + timedelta(hours=1)
        ),
    )  # fmt: skip

    assert disqualified.level == "iql"
    assert recycled_quiet.level == "iql"
    assert recycled_active.level == "mql"


@pytest.fixture
def mover(django_user_model):
    user = django_user_model.objects.create_user("rep", password="x-long-password")
    user.user_permissions.add(
        Permission.objects.get(codename="move_lead"),
        Permission.objects.get(codename="change_bant"),
    )
    return django_user_model.objects.get(pk=user.pk)


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user("guest", password="x-long-password")


def mql_lead() -> Lead:
    lead = lead_ingest(
        data=LeadData(email="an@vinatech.vn", phone="0912345678", company="VinaTech"),
        interactions=[InteractionData(kind="demo_request", channel="web_form")],
    ).lead
    lead.refresh_from_db()
    assert lead.level == "mql"
    return lead


@pytest.mark.django_db(transaction=True)
def test_recycle_needs_permission_and_a_reason_and_holds_until_new_activity(
    mover, outsider
):
    lead = mql_lead()

    with pytest.raises(PermissionDenied):
        lead_recycle(lead_id=lead.pk, by=outsider, reason_code="no_budget")
    with pytest.raises(ValidationError):
        lead_recycle(lead_id=lead.pk, by=mover, reason_code="other", note="")
    lead_recycle(lead_id=lead.pk, by=mover, reason_code="not_now", note="Q3")

    lead.refresh_from_db()
    assert lead.level == "iql"  # rescoring did not promote it straight back
    change = lead.level_changes.first()
    assert (change.action, change.reason_code, change.changed_by) == (
        "recycle",
        "not_now",
        mover,
    )

    lead_ingest(
        data=LeadData(email="an@vinatech.vn"),
        interactions=[InteractionData(kind="form_submit", channel="web_form")],
    )
    lead.refresh_from_db()
    assert lead.level == "mql"


@pytest.mark.django_db(transaction=True)
def test_disqualify_and_reopen(mover, outsider):
    lead = mql_lead()

    with pytest.raises(PermissionDenied):
        lead_disqualify(lead_id=lead.pk, by=outsider, reason_code="spam")
    lead_disqualify(lead_id=lead.pk, by=mover, reason_code="duplicate")
    with pytest.raises(ValidationError):
        lead_disqualify(lead_id=lead.pk, by=mover, reason_code="duplicate")
    lead_reopen(lead_id=lead.pk, by=mover)

    actions = list(lead.level_changes.values_list("action", flat=True))
    assert actions[:2] == ["reopen", "disqualify"]
    assert Lead.objects.get(pk=lead.pk).status == "open"


@pytest.mark.django_db(transaction=True)
def test_a_person_may_move_a_lead_back_only_with_a_reason(mover):
    lead = mql_lead()

    with pytest.raises(ValidationError):
        lead_move(lead_id=lead.pk, by=mover, to_level="iql")
    lead_move(lead_id=lead.pk, by=mover, to_level="iql", reason_code="not_a_fit")

    assert Lead.objects.get(pk=lead.pk).level == "iql"


@pytest.mark.django_db(transaction=True)
def test_confirmed_bant_makes_an_sql_and_statements_never_overwrite_it(mover):
    lead = mql_lead()
    soon = timezone.localdate() + timedelta(days=20)

    lead_bant_set(
        lead_id=lead.pk, criterion="budget", confirmed=True, by=mover,
        amount=Decimal("120000000"), currency="VND",
    )  # fmt: skip
    lead_bant_set(
        lead_id=lead.pk, criterion="need", confirmed=True, by=mover, text="CRM"
    )
    lead_bant_set(
        lead_id=lead.pk, criterion="timeline", confirmed=True, by=mover, date=soon
    )
    ignored = lead_bant_set(
        lead_id=lead.pk, criterion="budget", confirmed=False, amount=Decimal(1)
    )

    lead.refresh_from_db()
    assert ignored is None
    assert lead.level == "sql"
    assert lead.bant.get(criterion="budget").amount == Decimal("120000000")
    assert lead.level_changes.first().rule == "sql_bant_confirmed"


@pytest.mark.django_db(transaction=True)
def test_confirming_bant_needs_permission(outsider):
    lead = mql_lead()

    with pytest.raises(PermissionDenied):
        lead_bant_set(lead_id=lead.pk, criterion="need", confirmed=True, by=outsider)


@pytest.mark.django_db
def test_a_form_can_state_bant_through_ingest():
    lead = lead_ingest(
        data=LeadData(
            email="an@example.com",
            bant={"budget": {"amount": Decimal("60000000"), "currency": "VND"}},
        )
    ).lead

    assert lead.bant.get().status == "stated"


@pytest.mark.django_db
def test_decay_is_measured_against_the_clock():
    with time_machine.travel(NOW, tick=False):
        lead = lead_ingest(
            data=LeadData(email="an@example.com"),
            interactions=[InteractionData(kind="demo_request", channel="web_form")],
        ).lead
    with time_machine.travel(NOW + timedelta(days=90), tick=False):
        later = score_recompute(lead_id=lead.pk)

    assert later.engagement_score == 20
    assert later.temperature == "cold"


@pytest.mark.django_db(transaction=True)
def test_activating_a_draft_rescores_every_lead_with_its_version():
    leads = [mql_lead()] + [
        lead_ingest(data=LeadData(email=f"x{n}@example.com")).lead for n in range(3)
    ]
    draft = rule_set_draft(name="Stricter")
    draft.mql_total = 1000
    draft.save()
    FitRule.objects.create(
        rule_set=draft, field="email", operator="company_mail", points=7
    )

    job = rule_set_activate(rule_set=draft)

    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert job.done == job.total == len(leads)
    assert set(Lead.objects.values_list("score_version", flat=True)) == {draft.pk}
    assert Lead.objects.get(pk=leads[0].pk).level == "mql"  # never moved back
    assert RuleSet.objects.get(pk=draft.based_on_id).status == "archived"


@pytest.mark.django_db
def test_a_finished_job_is_not_run_twice():
    from scoring.rulesets import rescore_job_run

    job = RescoreJob.objects.create(
        rule_set=RuleSet.objects.active(), reason="test", status=JobStatus.DONE
    )

    assert rescore_job_run(job_id=job.pk).done == 0


def stricter_draft() -> RuleSet:
    draft = rule_set_draft(name="Stricter")
    FitRule.objects.create(
        rule_set=draft, field="email", operator="company_mail", points=7
    )
    return draft


@pytest.mark.django_db(transaction=True)
def test_a_job_is_cut_into_slices_that_together_score_every_lead(settings):
    settings.LEADCRM = {**settings.LEADCRM, "RESCORE_SLICE_SPAN": 2}
    for n in range(5):
        lead_ingest(data=LeadData(email=f"x{n}@vinatech.vn"))
    draft = stricter_draft()

    job = rule_set_activate(rule_set=draft)

    job.refresh_from_db()
    slices = list(job.slices.values_list("first_id", "last_id", "status"))
    first = Lead.objects.order_by("pk").first().pk
    assert slices == [
        (first, first + 1, "done"),
        (first + 2, first + 3, "done"),
        (first + 4, first + 4, "done"),
    ]
    assert (job.status, job.done, job.total) == (JobStatus.DONE, 5, 5)
    assert set(Lead.objects.values_list("score_version", flat=True)) == {draft.pk}
    assert set(Lead.objects.values_list("fit_score", flat=True)) == {17}


@pytest.mark.django_db
def test_a_job_counts_the_leads_added_before_its_first_run_in_its_total():
    from scoring.rulesets import rescore_job_run

    lead_ingest(data=LeadData(email="x1@vinatech.vn"))
    draft = stricter_draft()
    RuleSet.objects.filter(status="active").update(status="archived")
    RuleSet.objects.filter(pk=draft.pk).update(status="active")
    job = RescoreJob.objects.create(
        rule_set=draft, reason="test", total=Lead.objects.count()
    )
    for n in (2, 3):
        lead_ingest(data=LeadData(email=f"x{n}@vinatech.vn"))

    job = rescore_job_run(job_id=job.pk)

    assert (job.status, job.done, job.total) == (JobStatus.DONE, 3, 3)


def interrupted_job(draft: RuleSet, *, heartbeat: datetime) -> RescoreJob:
    """A job whose worker died in its only slice, after the first lead."""
    job = RescoreJob.objects.create(
        rule_set=draft,
        reason="test",
        status=JobStatus.RUNNING,
        total=Lead.objects.count(),
        done=1,
        heartbeat_at=heartbeat,
    )
    ids = list(Lead.objects.order_by("pk").values_list("pk", flat=True))
    job.slices.create(
        first_id=ids[0],
        last_id=ids[-1],
        done_through=ids[0],
        status=JobStatus.RUNNING,
        heartbeat_at=heartbeat,
    )
    return job


@pytest.mark.django_db
def test_a_slice_whose_worker_died_resumes_after_its_saved_progress():
    from scoring.rulesets import rescore_jobs_sweep

    leads = [
        lead_ingest(data=LeadData(email=f"x{n}@vinatech.vn")).lead for n in (1, 2, 3)
    ]
    draft = stricter_draft()
    RuleSet.objects.filter(status="active").update(status="archived")
    RuleSet.objects.filter(pk=draft.pk).update(status="active")
    job = interrupted_job(draft, heartbeat=timezone.now() - timedelta(minutes=10))

    assert rescore_jobs_sweep() == 1  # eager here: the job runs at once

    job.refresh_from_db()
    assert (job.status, job.done) == (JobStatus.DONE, 3)
    versions = dict(Lead.objects.values_list("pk", "score_version"))
    # The first lead was scored before the crash and is not scored again.
    assert versions == {leads[0].pk: None, leads[1].pk: draft.pk, leads[2].pk: draft.pk}


@pytest.mark.django_db
def test_a_slice_another_worker_is_running_is_left_alone():
    from scoring.rulesets import rescore_jobs_sweep, rescore_slice_run

    lead_ingest(data=LeadData(email="x1@vinatech.vn"))
    draft = stricter_draft()
    RuleSet.objects.filter(status="active").update(status="archived")
    RuleSet.objects.filter(pk=draft.pk).update(status="active")
    job = interrupted_job(draft, heartbeat=timezone.now())

    rescore_slice_run(slice_id=job.slices.get().pk)

    assert rescore_jobs_sweep() == 0
    job.refresh_from_db()
    assert (job.status, job.done) == (JobStatus.RUNNING, 1)
    assert job.slices.get().status == JobStatus.RUNNING


def draft_in_force(emails: int) -> RuleSet:
    """`emails` leads, and a stricter draft made the active version without
    starting its job."""
    for n in range(emails):
        lead_ingest(data=LeadData(email=f"x{n}@vinatech.vn"))
    draft = stricter_draft()
    RuleSet.objects.filter(status="active").update(status="archived")
    RuleSet.objects.filter(pk=draft.pk).update(status="active")
    return draft


@pytest.mark.django_db
def test_a_job_keeps_a_few_slices_in_flight_and_each_that_ends_sends_the_next(
    sent_slices,
):
    from scoring.rulesets import rescore_job_run, rescore_slice_run

    draft = draft_in_force(emails=7)
    job = RescoreJob.objects.create(rule_set=draft, reason="test", total=7)

    rescore_job_run(job_id=job.pk)

    slices = list(job.slices.order_by("first_id").values_list("pk", flat=True))
    assert len(slices) == 4
    assert sent_slices == slices[:2]
    # A worker takes the oldest task; what it sends goes behind the rest.
    done = 0
    while done < len(sent_slices):
        rescore_slice_run(slice_id=sent_slices[done])
        done += 1
        assert len(sent_slices) - done <= 2
    assert sent_slices == slices
    job.refresh_from_db()
    assert (job.status, job.done) == (JobStatus.DONE, 7)
    assert set(Lead.objects.values_list("score_version", flat=True)) == {draft.pk}


@pytest.mark.django_db
def test_a_slice_whose_task_was_not_sent_goes_with_the_next_slice_to_end(
    sent_slices, monkeypatch
):
    from scoring import rulesets
    from scoring.rulesets import rescore_job_run, rescore_slice_run

    draft = draft_in_force(emails=7)
    job = RescoreJob.objects.create(rule_set=draft, reason="test", total=7)
    rescore_job_run(job_id=job.pk)
    first, second, third, fourth = job.slices.order_by("first_id")
    sent = rulesets._enqueue_slice
    monkeypatch.setattr(rulesets, "_enqueue_slice", lambda slice_id: False)

    rescore_slice_run(slice_id=first.pk)  # the broker is away

    third.refresh_from_db()
    assert third.published_at is None
    monkeypatch.setattr(rulesets, "_enqueue_slice", sent)
    rescore_slice_run(slice_id=second.pk)
    assert sent_slices == [first.pk, second.pk, third.pk]
    rescore_slice_run(slice_id=third.pk)
    rescore_slice_run(slice_id=fourth.pk)
    job.refresh_from_db()
    assert (job.status, job.done) == (JobStatus.DONE, 7)


@pytest.mark.django_db
def test_an_abandoned_job_sends_again_the_slices_no_worker_runs(sent_slices):
    from scoring.rulesets import rescore_job_run

    draft = draft_in_force(emails=1)
    long_ago = timezone.now() - timedelta(minutes=10)
    job = RescoreJob.objects.create(
        rule_set=draft,
        reason="test",
        status=JobStatus.RUNNING,
        heartbeat_at=long_ago,
    )

    def piece(first: int, status: str, **fields):
        return job.slices.create(
            first_id=first, last_id=first, done_through=first - 1, status=status,
            **fields,
        )  # fmt: skip

    piece(1, JobStatus.DONE, published_at=long_ago)
    lost = piece(2, JobStatus.QUEUED, published_at=long_ago)
    dead = piece(3, JobStatus.RUNNING, published_at=long_ago, heartbeat_at=long_ago)
    piece(4, JobStatus.QUEUED)

    rescore_job_run(job_id=job.pk)

    # Two in flight already: the job sends those again, and no new one.
    assert sent_slices == [lost.pk, dead.pk]


def five_leads_whose_second_batch_raises(
    settings, monkeypatch, error: Exception
) -> list[list[int]]:
    """Five leads in slices of two, and a rescore whose second batch raises
    `error`; returns the batches it was given."""
    from scoring import rulesets

    settings.LEADCRM = {**settings.LEADCRM, "RESCORE_SLICE_SPAN": 2}
    for n in range(5):
        lead_ingest(data=LeadData(email=f"x{n}@vinatech.vn"))
    calls = []
    real_batch = rulesets.rescore_batch

    def raises_on_the_second_batch(ids, **kwargs):
        calls.append(ids)
        if len(calls) == 2:
            raise error
        return real_batch(ids, **kwargs)

    monkeypatch.setattr(rulesets, "rescore_batch", raises_on_the_second_batch)
    return calls


@pytest.mark.django_db(transaction=True)
def test_a_failing_slice_fails_the_job_and_stops_the_others(settings, monkeypatch):
    calls = five_leads_whose_second_batch_raises(
        settings, monkeypatch, RuntimeError("disk full")
    )

    job = rule_set_activate(rule_set=stricter_draft())

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "disk full" in job.error
    assert job.done == 2
    assert len(calls) == 2  # the third slice found the job failed
    assert list(job.slices.values_list("status", flat=True)) == [
        "done",
        "failed",
        "queued",
    ]


@pytest.mark.django_db
def test_a_database_error_hands_the_slice_back_and_its_retry_finishes_the_job(
    settings, monkeypatch, sent_slices
):
    from django.db import OperationalError

    from scoring.rulesets import rescore_job_run, rescore_slice_run

    five_leads_whose_second_batch_raises(
        settings,
        monkeypatch,
        OperationalError("server closed the connection unexpectedly"),
    )
    draft = stricter_draft()
    RuleSet.objects.filter(status="active").update(status="archived")
    RuleSet.objects.filter(pk=draft.pk).update(status="active")
    job = RescoreJob.objects.create(rule_set=draft, reason="test", total=5)
    rescore_job_run(job_id=job.pk)
    first, second, third = job.slices.order_by("first_id")

    rescore_slice_run(slice_id=first.pk)
    with pytest.raises(OperationalError):
        rescore_slice_run(slice_id=second.pk)
    rescore_slice_run(slice_id=third.pk)

    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.RUNNING, "")
    assert list(job.slices.values_list("status", flat=True)) == [
        "done",
        "queued",
        "done",
    ]

    # What the task's retry does on a worker.
    rescore_slice_run(slice_id=second.pk)

    job.refresh_from_db()
    assert (job.status, job.done) == (JobStatus.DONE, 5)
    assert set(Lead.objects.values_list("score_version", flat=True)) == {draft.pk}
    assert sent_slices == [first.pk, second.pk, third.pk]


@pytest.mark.django_db
def test_preview_counts_level_changes_and_measures_auc():
    for n in range(6):
        lead_ingest(
            data=LeadData(
                email=f"lead{n}@example.com",
                company="VinaTech" if n % 2 else "",
                known_outcome=bool(n % 2),
            ),
            interactions=[InteractionData(kind="demo_request", channel="web_form")],
        )
    draft = rule_set_draft()
    FitRule.objects.create(
        rule_set=draft, field="company", operator="filled", points=50
    )

    preview = rules_preview(rules=draft.to_rules())

    assert preview.leads == 6
    assert preview.with_outcome == 6
    assert preview.auc == 1.0
    assert preview.conversion_rate("mql") == 1.0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_recomputes_while_interactions_arrive_end_consistent():
    lead = lead_ingest(data=LeadData(email="busy@example.com")).lead
    errors: list[BaseException] = []

    def recompute() -> None:
        try:
            score_recompute(lead_id=lead.pk)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def interact(n: int) -> None:
        try:
            lead_ingest(
                data=LeadData(email="busy@example.com"),
                interactions=[
                    InteractionData(
                        kind="page_visit", channel="web_form", idempotency_key=f"v{n}"
                    )
                ],
                announce=False,
            )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=recompute) for _ in range(20)]
    threads += [threading.Thread(target=interact, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    settled = Lead.objects.get(pk=lead.pk)
    once_more = score_recompute(lead_id=lead.pk)

    assert errors == []
    assert Interaction.objects.filter(lead=lead).count() == 5
    assert settled.score_breakdown == once_more.score_breakdown or (
        settled.score_stale  # an interaction landed after the last recompute
    )
    assert score_recompute(lead_id=lead.pk).score == once_more.score
    assert LevelChange.objects.filter(lead=lead).count() == 1
