"""A batch ingested set-based (`lead_ingest_many`, the drain) ends exactly as
the same items ingested one at a time through `lead_ingest` would."""

import secrets
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from campaigns import ratelimit
from campaigns import services as capture
from campaigns.models import (
    Campaign,
    ConsentRecord,
    Event,
    EventRegistration,
    FormField,
    RegistrationSource,
    RegistrationStatus,
    SpamReason,
    Submission,
    SubmissionStatus,
    WebForm,
)
from campaigns.selectors import forget_forms
from leads import services as ingest
from leads.models import Interaction, Lead, Level, LevelChange
from leads.selectors import lead_search
from leads.services import (
    PROFILE_FIELDS,
    IngestItem,
    InteractionData,
    LeadData,
    lead_ingest,
    lead_ingest_many,
)
from tests import services

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

LEAD_FIELDS = (
    "email",
    "phone",
    "external_id",
    *PROFILE_FIELDS,
    "custom",
    "email_consent",
    "known_outcome",
    "first_touch_campaign_id",
    "last_touch_campaign_id",
    "first_touch_utm",
    "last_touch_utm",
    "level",
    "status",
    "score_stale",
    "search_text",
    "last_interaction_at",
)


def post(n: int, *, form_campaign: int | None = None, **fields) -> IngestItem:
    """Person data and the form post that brought it, keyed like the drain's."""
    return IngestItem(
        LeadData(**fields),
        [
            InteractionData(
                kind="form_submit",
                channel="web_form",
                occurred_at=AT + timedelta(minutes=n),
                campaign_id=form_campaign,
                details={"submission": n},
                idempotency_key=f"submission:{n}",
            )
        ],
    )


def identity(lead: Lead) -> tuple[str, str, str]:
    return (lead.email, lead.phone, lead.external_id)


def db_state() -> dict:
    """Every lead by its identities, with what was written about it."""
    return {
        identity(lead): {
            "fields": {name: getattr(lead, name) for name in LEAD_FIELDS},
            "interactions": sorted(
                lead.interactions.values_list(
                    "idempotency_key",
                    "kind",
                    "channel",
                    "occurred_at",
                    "subject",
                    "quantity",
                    "campaign_id",
                    "details",
                )
            ),
            "history": list(
                lead.level_changes.values_list(
                    "from_level", "to_level", "rule", "reason", "action"
                )
            ),
            "bant": sorted(
                lead.bant.values_list(
                    "criterion", "status", "amount", "currency", "text", "date"
                )
            ),
        }
        for lead in Lead.objects.all()
    }


def one_at_a_time(items) -> list[tuple]:
    outcomes = []
    for item in items:
        try:
            result = lead_ingest(
                data=item.data, interactions=item.interactions, announce=False
            )
        except ValidationError as exc:
            outcomes.append((None, False, 0, exc.messages))
        else:
            outcomes.append(
                (result.lead.pk, result.created, result.interactions_created, None)
            )
    return outcomes


def together(items) -> list[tuple]:
    return [
        (
            result.lead_id,
            result.created,
            result.interactions_created,
            result.error.messages if result.error else None,
        )
        for result in lead_ingest_many(items=items)
    ]


class _Undo(Exception):
    pass


def outcome_of(ingest_items, items) -> tuple[list[tuple], dict]:
    """What an ingest makes of the items, then undone: each item's lead (by
    its identities), created, interactions created and errors; and every
    lead as stored."""
    try:
        with transaction.atomic():
            results = ingest_items(items)
            leads = {lead.pk: identity(lead) for lead in Lead.objects.all()}
            outcome = (
                [(leads.get(pk), *rest) for pk, *rest in results],
                db_state(),
            )
            raise _Undo
    except _Undo:
        pass
    return outcome


@pytest.fixture
def one_by_one_calls(monkeypatch) -> list[LeadData]:
    """The items `lead_ingest_many` hands to the one-by-one steps."""
    calls: list[LeadData] = []
    original = ingest._ingest_retrying

    def spy(clean, interactions):
        calls.append(clean)
        return original(clean, interactions)

    monkeypatch.setattr(ingest, "_ingest_retrying", spy)
    return calls


NEW_PEOPLE = [
    post(
        1,
        email=" Nguyen.An@CongTy.VN ",
        phone="0912 345 678",
        full_name="Nguyễn Văn An",
        company="Công ty An Phát",
        utm={"utm_source": "facebook", "utm_campaign": "tet-2026"},
        custom={"note": "50% off?"},
    ),
    post(
        2,
        email="binh@example.vn",
        first_name="Bình",
        last_name="Trần",
        bant={"budget": {"amount": "150000000", "currency": "vnd"}},
    ),
    post(3, phone="+84 987 654 321", job_title="Kế toán trưởng", city="Đà Nẵng"),
    post(
        4,
        external_id="CRM-77",
        full_name="Lê Thị Cúc",
        bant={"need": {"text": "Quản lý khách hàng"}},
    ),
]


def test_new_people_in_a_batch_are_each_created_once_with_history(
    one_by_one_calls,
):
    results = lead_ingest_many(items=NEW_PEOPLE)

    assert [(r.created, r.interactions_created, r.error) for r in results] == [
        (True, 1, None)
    ] * 4
    assert one_by_one_calls == []
    assert Lead.objects.count() == 4
    assert len({r.lead_id for r in results}) == 4
    for result in results:
        lead = Lead.objects.get(pk=result.lead_id)
        assert lead.interactions.count() == 1
        assert list(lead.level_changes.values_list("from_level", "to_level")) == [
            ("", Level.IQL)
        ]
        assert lead.score_stale


def test_new_people_in_a_batch_get_normalised_identities_and_stated_bant():
    an, binh, third, cuc = (
        Lead.objects.get(pk=r.lead_id) for r in lead_ingest_many(items=NEW_PEOPLE)
    )

    assert identity(an) == ("nguyen.an@congty.vn", "+84912345678", "")
    assert identity(third) == ("", "+84987654321", "")
    assert identity(cuc) == ("", "", "CRM-77")
    assert binh.full_name == "Bình Trần"
    assert an.last_interaction_at == AT + timedelta(minutes=1)
    budget = binh.bant.get(criterion="budget")
    assert (budget.status, budget.amount, budget.currency) == (
        "stated",
        Decimal("150000000"),
        "VND",
    )
    assert cuc.bant.get(criterion="need").text == "Quản lý khách hàng"


def test_new_people_in_a_batch_are_found_by_name_and_local_phone():
    lead_ingest_many(items=NEW_PEOPLE)

    assert [lead.email for lead in lead_search(Lead.objects.all(), "0912345")] == [
        "nguyen.an@congty.vn"
    ]
    assert [lead.phone for lead in lead_search(Lead.objects.all(), "0987 654")] == [
        "+84987654321"
    ]
    assert [lead.email for lead in lead_search(Lead.objects.all(), "nguyen an")] == [
        "nguyen.an@congty.vn"
    ]


def test_new_people_in_a_batch_are_stored_as_one_at_a_time_ingests_store_them(
    web_form,
):
    items = [
        *NEW_PEOPLE,
        post(5, form_campaign=web_form.campaign_id, email="dung@example.vn"),
        post(6, campaign_id=web_form.campaign_id, email="em@example.vn"),
    ]

    assert outcome_of(together, items) == outcome_of(one_at_a_time, items)


@pytest.fixture
def returning(make_lead) -> Lead:
    return make_lead(
        email="hoa@congty.vn",
        full_name="Trần Thị Hoa",
        company="Công ty A",
        interactions=[
            InteractionData(
                kind="form_submit",
                channel="web_form",
                occurred_at=AT,
                idempotency_key="submission:100",
            )
        ],
    )


def mixed_batch() -> list[IngestItem]:
    return [
        post(10, email="HOA@congty.vn", company="", job_title="Kế toán"),
        post(11, email="Minh@Example.VN", full_name="Phạm Minh"),
        post(12, email="\u00a0minh@example.vn\u00a0", company="Minh Co"),
        post(13, phone="0912 000 111", full_name="Võ Thu"),
        post(14, phone="+84 912 000 111", city="Huế"),
        post(15, email="not-an-email", full_name="Nobody"),
        IngestItem(
            LeadData(email="hoa@congty.vn"),
            [
                InteractionData(
                    kind="form_submit",
                    channel="web_form",
                    occurred_at=AT,
                    idempotency_key="submission:100",
                )
            ],
        ),
        post(16, email="new@example.vn"),
    ]


def test_a_mixed_batch_gives_each_item_its_lead_and_its_outcome(
    returning, one_by_one_calls
):
    results = lead_ingest_many(items=mixed_batch())

    minh = Lead.objects.get(email="minh@example.vn")
    thu = Lead.objects.get(phone="+84912000111")
    new = Lead.objects.get(email="new@example.vn")
    outcomes = [(r.lead_id, r.created, r.interactions_created) for r in results]
    assert outcomes == [
        (returning.pk, False, 1),
        (minh.pk, True, 1),
        (minh.pk, False, 1),
        (thu.pk, True, 1),
        (thu.pk, False, 1),
        (None, False, 0),
        (returning.pk, False, 0),
        (new.pk, True, 1),
    ]
    assert [r.error is None for r in results] == [True] * 5 + [False, True, True]
    assert "email" in results[5].error.message_dict
    assert len(one_by_one_calls) == 6


def test_a_returning_lead_in_a_batch_is_updated_not_duplicated(returning):
    lead_ingest_many(items=mixed_batch())

    returning.refresh_from_db()
    assert Lead.objects.filter(email="hoa@congty.vn").count() == 1
    assert returning.company == "Công ty A"
    assert returning.job_title == "Kế toán"
    assert sorted(returning.interactions.values_list("idempotency_key", flat=True)) == [
        "submission:10",
        "submission:100",
    ]
    assert returning.level_changes.count() == 1


def test_a_mixed_batch_writes_nothing_for_an_invalid_item_or_a_redelivery(returning):
    lead_ingest_many(items=mixed_batch())

    assert Lead.objects.count() == 4
    assert Interaction.objects.count() == 7
    assert LevelChange.objects.count() == 4
    assert not Lead.objects.filter(full_name="Nobody").exists()
    assert not Interaction.objects.filter(idempotency_key="submission:15").exists()
    assert Interaction.objects.filter(idempotency_key="submission:100").count() == 1
    minh = Lead.objects.get(email="minh@example.vn")
    assert (minh.full_name, minh.company) == ("Phạm Minh", "Minh Co")
    thu = Lead.objects.get(phone="+84912000111")
    assert (thu.full_name, thu.city) == ("Võ Thu", "Huế")


def test_a_mixed_batch_ends_as_one_at_a_time_ingests_end(returning):
    items = mixed_batch()

    assert outcome_of(together, items) == outcome_of(one_at_a_time, items)


@pytest.mark.parametrize(
    "items",
    [
        [
            post(1, email="a@example.vn", phone="0912 345 678"),
            post(2, email="b@example.vn", phone="+84912345678"),
            post(3, email="c@example.vn", phone="(+84) 912-345-678"),
        ],
        [
            post(1, email="a@example.vn", external_id="CRM-1"),
            post(2, phone="0987 000 111", external_id="CRM-1"),
            post(3, external_id="CRM-1", full_name="Chỉ có mã"),
        ],
        [
            post(1, email="a@example.vn"),
            post(2, phone="0912 345 678"),
            post(3, email="a@example.vn", phone="0912345678"),
            post(4, email="b@example.vn", phone="0912345678"),
        ],
        [
            post(1, phone="0912 345 678", external_id="X-1"),
            post(2, email="d@example.vn", external_id="X-1"),
            post(3, email="d@example.vn", phone="0987 111 222"),
            post(4, phone="0987 111 222", external_id="X-2"),
            post(5, email="solo@example.vn"),
        ],
        [
            post(1, email="a@example.vn"),
            IngestItem(post(2, email="b@example.vn").data, post(1).interactions),
        ],
    ],
    ids=[
        "one phone, several emails",
        "one external id",
        "two people then both",
        "a chain of shared identities",
        "one key, two people",
    ],
)
def test_items_sharing_identities_go_where_one_at_a_time_ingests_send_them(items):
    assert outcome_of(together, items) == outcome_of(one_at_a_time, items)


def test_items_sharing_identities_with_known_leads_go_where_one_at_a_time_would(
    make_lead,
):
    make_lead(phone="0912 345 678", full_name="Chỉ có số")
    make_lead(email="known@example.vn", external_id="CRM-9")
    items = [
        post(1, email="new@example.vn", phone="0912345678"),
        post(2, email="known@example.vn", phone="0912345678"),
        post(3, phone="0977 000 000", external_id="CRM-9"),
        post(4, email="other@example.vn", external_id="CRM-9"),
    ]

    assert outcome_of(together, items) == outcome_of(one_at_a_time, items)


def test_items_sharing_a_phone_with_different_emails_share_the_first_ones_lead():
    results = lead_ingest_many(
        items=[
            post(1, email="a@example.vn", phone="0912 345 678"),
            post(2, email="b@example.vn", phone="+84 912 345 678"),
        ]
    )

    lead = Lead.objects.get()
    assert [r.lead_id for r in results] == [lead.pk, lead.pk]
    assert lead.email == "a@example.vn"
    assert lead.interactions.count() == 2


# The drain -----------------------------------------------------------------


@pytest.fixture
def event_form(db) -> WebForm:
    campaign = Campaign.objects.create(name="Hội thảo AI 2026", kind="seminar")
    form = WebForm.objects.create(
        campaign=campaign, name="Seminar sign-up", key="seminar"
    )
    Event.objects.create(
        campaign=campaign,
        name="AI for sales, Hà Nội",
        kind="seminar",
        starts_at=AT + timedelta(days=30),
        ends_at=AT + timedelta(days=30, hours=3),
        venue="Lotte Center, Hà Nội",
        capacity=10,
        form=form,
    )
    return form


@pytest.fixture
def consent_form(db) -> WebForm:
    campaign = Campaign.objects.create(name="Newsletter", kind="newsletter")
    form = WebForm.objects.create(campaign=campaign, name="Newsletter", key="news")
    FormField.objects.create(form=form, name="email", required=True)
    FormField.objects.create(form=form, name="consent")
    capture.webform_consent_set(
        form=form,
        purpose="Marketing emails",
        text_en="I agree to receive marketing emails.",
        text_vi="Tôi đồng ý nhận email tiếp thị.",
    )
    forget_forms()
    form.refresh_from_db()
    return form


@pytest.fixture
def ingest_many_calls(monkeypatch) -> list[int]:
    sizes: list[int] = []
    original = capture.lead_ingest_many

    def spy(*, items):
        sizes.append(len(items))
        return original(items=items)

    monkeypatch.setattr(capture, "lead_ingest_many", spy)
    return sizes


def submit(form: WebForm, payload: dict, **fields) -> Submission:
    return Submission.objects.create(form=form, payload=payload, **fields)


def test_a_drained_batch_of_three_kinds_of_form_is_processed_together(
    web_form, event_form, consent_form, make_lead, ingest_many_calls
):
    known = make_lead(email="lan@example.vn", full_name="Phạm Thị Lan")
    plain = submit(web_form, {"email": "an@example.vn", "phone": "0912 345 678"})
    seat = submit(event_form, {"email": "lan@example.vn", "company": "Lan Co"})
    consent = submit(
        consent_form,
        {"email": "mai@example.vn", "consent": "on"},
        consent_version=consent_form.consent_version,
        referer="https://shop.example.vn/news",
    )
    broken = submit(web_form, {"email": "nope", "full_name": "Nobody"})

    assert capture.submission_drain() == 4

    assert ingest_many_calls == [4]
    statuses = dict(Submission.objects.values_list("pk", "status"))
    assert statuses == {
        plain.pk: SubmissionStatus.PROCESSED,
        seat.pk: SubmissionStatus.PROCESSED,
        consent.pk: SubmissionStatus.PROCESSED,
        broken.pk: SubmissionStatus.FAILED,
    }
    seat.refresh_from_db()
    broken.refresh_from_db()
    assert seat.lead_id == known.pk
    assert broken.lead_id is None
    assert broken.error
    assert Lead.objects.get(phone="+84912345678").submissions.get() == plain


def test_a_drained_event_form_post_takes_a_seat_and_a_consent_post_is_recorded(
    web_form, event_form, consent_form, make_lead
):
    known = make_lead(email="lan@example.vn")
    submit(web_form, {"email": "an@example.vn"})
    seat = submit(event_form, {"email": "LAN@example.vn"})
    newcomer = submit(event_form, {"email": "tam@example.vn"})
    consent = submit(
        consent_form,
        {"email": "mai@example.vn", "consent": "on"},
        consent_version=consent_form.consent_version,
    )

    capture.submission_drain()

    registrations = EventRegistration.objects.order_by("submission_id")
    assert [
        (r.submission_id, r.lead.email, r.status, r.source) for r in registrations
    ] == [
        (seat.pk, known.email, RegistrationStatus.REGISTERED, RegistrationSource.FORM),
        (
            newcomer.pk,
            "tam@example.vn",
            RegistrationStatus.REGISTERED,
            RegistrationSource.FORM,
        ),
    ]
    record = ConsentRecord.objects.get()
    assert record.submission_id == consent.pk
    assert record.lead.email == "mai@example.vn"
    assert record.consent_text.version == consent_form.consent_version
    assert record.lead.email_consent is True
    assert Lead.objects.get(email="an@example.vn").email_consent is None


def test_a_failed_post_requeued_at_once_is_taken_by_the_next_drain(web_form):
    failed = submit(web_form, {"email": "nope"})
    capture.submission_drain()

    capture.submission_requeue(submission_ids=[failed.pk])

    assert capture.submission_drain() == 1
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (SubmissionStatus.FAILED, 1)


# Rate limits, counted when a worker first takes a post ----------------------


@pytest.fixture
def limited(settings):
    """Two posts a minute from one address, counted in the test Redis. Gives
    addresses of the test's own, whose counters are removed afterwards."""
    settings.LEADCRM = {
        **settings.LEADCRM,
        "RATE_LIMIT_REDIS_URL": services.redis_url(),
        "RATE_LIMIT_PER_IP": 2,
        "RATE_LIMIT_PER_FORM": 600,
    }
    ratelimit.reset_backoff()
    taken: list[str] = []

    def address() -> str:
        taken.append("10." + ".".join(str(secrets.randbelow(250)) for _ in "abc"))
        return taken[-1]

    yield address
    ratelimit.reset_backoff()
    client = redis.Redis.from_url(services.redis_url())
    for addr in taken:
        for key in client.scan_iter(f"leadcrm:rl:ip:{addr}:*"):
            client.delete(key)


def ip_count(addr: str, at: datetime) -> int:
    window = int(at.timestamp()) // ratelimit.WINDOW_SECONDS
    value = redis.Redis.from_url(services.redis_url()).get(
        f"leadcrm:rl:ip:{addr}:{window}"
    )
    return int(value or 0)


def burst(form: WebForm, addr: str, count: int, *, at: datetime) -> list[Submission]:
    return [
        submit(form, {"email": f"p{n}@example.vn"}, remote_addr=addr, received_at=at)
        for n in range(count)
    ]


@pytest.mark.redis
def test_posts_over_the_per_ip_limit_are_kept_as_spam_on_their_first_claim(
    web_form, limited
):
    address, now = limited(), timezone.now()
    posts = burst(web_form, address, 4, at=now)
    other = submit(web_form, {"email": "q@example.vn"}, remote_addr=limited())

    assert capture.submission_drain() == 3

    kept = Submission.objects.filter(pk__in=[p.pk for p in posts], status="spam")
    assert kept.count() == 2
    assert set(kept.values_list("spam_reason", "attempts", "lead_id")) == {
        (SpamReason.RATE_LIMIT, 1, None)
    }
    other.refresh_from_db()
    assert other.status == SubmissionStatus.PROCESSED
    assert Lead.objects.count() == 3
    assert ip_count(address, now) == 4


@pytest.mark.redis
def test_a_post_released_from_the_spam_log_is_not_counted_again(
    web_form, limited, user
):
    address, now = limited(), timezone.now()
    burst(web_form, address, 2, at=now)
    honeypot = submit(
        web_form,
        {"email": "real@example.vn"},
        remote_addr=address,
        received_at=now,
        status=SubmissionStatus.SPAM,
        spam_reason=SpamReason.HONEYPOT,
    )
    capture.submission_drain()

    capture.submission_release(submission_id=honeypot.pk, by=user)
    capture.submission_drain()

    honeypot.refresh_from_db()
    assert honeypot.status == SubmissionStatus.PROCESSED
    assert honeypot.lead.email == "real@example.vn"
    assert ip_count(address, now) == 2


@pytest.mark.redis
def test_a_rate_limited_post_released_from_the_spam_log_is_processed(
    web_form, limited, user
):
    address, now = limited(), timezone.now()
    posts = burst(web_form, address, 3, at=now)
    capture.submission_drain()
    kept = Submission.objects.get(pk__in=[p.pk for p in posts], status="spam")

    capture.submission_release(submission_id=kept.pk, by=user)
    capture.submission_drain()

    kept.refresh_from_db()
    assert kept.status == SubmissionStatus.PROCESSED
    assert kept.spam_reason == SpamReason.RATE_LIMIT
    assert Lead.objects.count() == 3
    assert ip_count(address, now) == 3


def test_with_the_limiter_unreachable_every_post_is_processed(web_form, settings):
    settings.LEADCRM = {
        **settings.LEADCRM,
        "RATE_LIMIT_REDIS_URL": "redis://127.0.0.1:1/0",
        "RATE_LIMIT_PER_IP": 0,
        "RATE_LIMIT_PER_FORM": 0,
    }
    ratelimit.reset_backoff()
    for n in range(3):
        submit(web_form, {"email": f"p{n}@example.vn"}, remote_addr="192.0.2.1")

    try:
        assert capture.submission_drain() == 3
    finally:
        ratelimit.reset_backoff()

    assert set(Submission.objects.values_list("status", flat=True)) == {
        SubmissionStatus.PROCESSED
    }
    assert Lead.objects.count() == 3


# Concurrent batches ----------------------------------------------------------


def ingest_concurrently(batches: list[list[IngestItem]]) -> tuple:
    """Ingest each batch in a thread and transaction of its own; every
    batch has looked up what is known and sends its insert of new leads at
    the same moment."""
    barrier = threading.Barrier(len(batches))
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def insert_together(execute, sql, params, many, context):
        if sql.startswith(f'INSERT INTO "{Lead._meta.db_table}"'):
            barrier.wait(timeout=10)
        return execute(sql, params, many, context)

    def run(n: int) -> None:
        try:
            with connection.execute_wrapper(insert_together), transaction.atomic():
                results[n] = lead_ingest_many(items=batches[n])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return [results.get(n) for n in range(len(batches))], errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_sharing_a_new_person_make_one_lead():
    batches = [
        [post(1, email="Race@Example.vn"), post(2, email="one@example.vn")],
        [post(3, email="race@example.vn "), post(4, email="two@example.vn")],
    ]

    (first, second), errors = ingest_concurrently(batches)

    assert errors == []
    race = Lead.objects.get(email="race@example.vn")
    assert [first[0].lead_id, second[0].lead_id] == [race.pk, race.pk]
    assert sorted([first[0].created, second[0].created]) == [False, True]
    assert race.interactions.count() == 2
    assert race.level_changes.count() == 1
    assert Lead.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_sharing_new_people_in_another_order_make_one_lead_each():
    people = [f"p{n:03}@example.vn" for n in range(500)]
    batches = [
        [post(n, email=email) for n, email in enumerate(people)],
        [post(500 + n, email=email) for n, email in enumerate(reversed(people))],
    ]

    results, errors = ingest_concurrently(batches)

    assert errors == []
    assert Lead.objects.count() == 500
    assert Interaction.objects.count() == 1000
    assert sum(r.created for batch in results for r in batch) == 500
