import json
import time

import pytest

from campaigns import inbound
from campaigns.models import (
    Campaign,
    InboundDelivery,
    LeadSource,
    SubmissionStatus,
)
from leads.models import Channel, Interaction, Lead

# Transactional: processing runs from transaction.on_commit, as in
# production, with Celery eager.
pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "s3cret-shared-with-the-platform"


@pytest.fixture
def source(db):
    campaign = Campaign.objects.create(name="Facebook lead ads Q4", kind="ads")
    return LeadSource.objects.create(
        name="Facebook: Q4 form",
        platform="facebook",
        key="fb-q4",
        secret=SECRET,
        campaign=campaign,
    )


def _deliver(client, body, *, key="fb-q4", secret=SECRET, sent=None, signature=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = str(int(time.time() if sent is None else sent))
    signature = signature or inbound.sign(secret=secret, timestamp=timestamp, body=raw)
    return client.post(
        f"/in/{key}/",
        raw,
        content_type="application/json",
        headers={
            "X-LeadCRM-Timestamp": timestamp,
            "X-LeadCRM-Signature": signature,
        },
    )


LEAD = {
    "lead_id": "fb-1001",
    "email": "Hoa.Le@Example.vn",
    "phone": "0912 345 678",
    "full_name": "Lê Thị Hoa",
    "company": "Hoa Co",
    "budget_question": "over 100M",
}


def test_a_signed_delivery_is_stored_and_becomes_a_lead(client, source):
    response = _deliver(client, LEAD)

    assert response.status_code == 202
    delivery = InboundDelivery.objects.get()
    assert response.json() == {"id": delivery.pk, "status": "accepted"}
    assert delivery.status == SubmissionStatus.PROCESSED
    assert delivery.external_id == "fb-1001"
    lead = Lead.objects.get()
    assert delivery.lead == lead
    assert (lead.email, lead.phone) == ("hoa.le@example.vn", "+84912345678")
    assert lead.source == "facebook"
    assert lead.custom == {"budget_question": "over 100M"}
    assert lead.first_touch_campaign == source.campaign
    interaction = Interaction.objects.get()
    assert interaction.channel == Channel.SOCIAL
    assert interaction.idempotency_key == f"inbound:{source.pk}:fb-1001"
    assert interaction.details["platform_lead_id"] == "fb-1001"
    lead.refresh_from_db()
    assert lead.scored_at is not None


def test_lead_ads_field_data_is_read_as_fields(client, source):
    body = {
        "leadgen_id": "fb-2002",
        "created_time": "2026-11-01T08:30:00+0700",
        "field_data": [
            {"name": "email", "values": ["an@example.vn"]},
            {"name": "full_name", "values": ["Võ Văn An"]},
            {"name": "city", "values": ["Đà Nẵng"]},
        ],
    }

    assert _deliver(client, body).status_code == 202

    lead = Lead.objects.get()
    assert (lead.full_name, lead.city) == ("Võ Văn An", "Đà Nẵng")
    assert Interaction.objects.get().occurred_at.isoformat() == (
        "2026-11-01T01:30:00+00:00"
    )


def test_a_bad_signature_is_refused_and_nothing_is_stored(client, source):
    response = _deliver(client, LEAD, secret="not-the-secret")

    assert response.status_code == 401
    assert set(response.json()["errors"]) == {"signature"}
    assert InboundDelivery.objects.count() == 0
    assert Lead.objects.count() == 0


def test_a_body_changed_after_signing_is_refused(client, source):
    timestamp = str(int(time.time()))
    signature = inbound.sign(
        secret=SECRET, timestamp=timestamp, body=json.dumps(LEAD).encode()
    )
    tampered = {**LEAD, "email": "someone.else@example.vn"}

    response = _deliver(client, tampered, sent=int(timestamp), signature=signature)

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


def test_a_timestamp_older_than_five_minutes_is_refused(client, source):
    response = _deliver(client, LEAD, sent=time.time() - 301)

    assert response.status_code == 401
    assert set(response.json()["errors"]) == {"timestamp"}
    assert InboundDelivery.objects.count() == 0


def test_a_timestamp_within_five_minutes_is_accepted(client, source):
    assert _deliver(client, LEAD, sent=time.time() - 240).status_code == 202


def test_a_missing_timestamp_is_refused(client, source):
    raw = json.dumps(LEAD).encode()
    response = client.post(
        "/in/fb-q4/",
        raw,
        content_type="application/json",
        headers={"X-LeadCRM-Signature": "sha256=00"},
    )

    assert response.status_code == 401
    assert InboundDelivery.objects.count() == 0


def test_a_replayed_request_is_refused(client, source):
    sent = int(time.time())
    first = _deliver(client, LEAD, sent=sent)

    replay = _deliver(client, LEAD, sent=sent)

    assert first.status_code == 202
    assert replay.status_code == 409
    assert set(replay.json()["errors"]) == {"signature"}
    assert InboundDelivery.objects.count() == 1
    assert Interaction.objects.count() == 1


def test_a_redelivery_of_the_same_lead_adds_nothing(client, source):
    _deliver(client, LEAD, sent=time.time() - 10)
    lead = Lead.objects.get()

    again = _deliver(client, LEAD)

    assert again.status_code == 202
    # Both deliveries are kept raw; the lead and its log are unchanged.
    assert InboundDelivery.objects.count() == 2
    assert set(InboundDelivery.objects.values_list("status", flat=True)) == {
        "processed"
    }
    assert Lead.objects.get().pk == lead.pk
    assert Interaction.objects.count() == 1


def test_the_same_platform_lead_id_from_another_source_is_another_interaction(
    client, source
):
    other = LeadSource.objects.create(
        name="TikTok form", platform="tiktok", key="tt", secret="tiktok-secret"
    )
    _deliver(client, LEAD)

    _deliver(client, LEAD, key="tt", secret="tiktok-secret")

    assert Lead.objects.count() == 1
    assert Interaction.objects.count() == 2
    assert other.deliveries.get().status == "processed"


def test_a_delivery_without_the_platforms_lead_id_is_refused(client, source):
    response = _deliver(client, {"email": "an@example.vn"})

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"lead_id"}
    assert InboundDelivery.objects.count() == 0


@pytest.mark.parametrize("body", [b"[1, 2]", b"{not json"])
def test_a_body_that_is_not_a_json_object_is_refused(client, source, body):
    response = _deliver(client, body)

    assert response.status_code == 400
    assert InboundDelivery.objects.count() == 0


def test_an_unknown_or_inactive_source_is_not_found(client, source):
    source.is_active = False
    source.save()

    assert _deliver(client, LEAD).status_code == 404
    assert _deliver(client, LEAD, key="nope").status_code == 404


def test_a_delivery_without_contact_details_is_kept_as_failed(client, source):
    response = _deliver(client, {"lead_id": "fb-3", "full_name": "Không Liên Lạc"})

    assert response.status_code == 202
    delivery = InboundDelivery.objects.get()
    assert delivery.status == SubmissionStatus.FAILED
    assert "email" in delivery.error.lower()
    assert Lead.objects.count() == 0


def test_a_delivery_whose_processing_crashes_is_kept_for_the_sweeper(
    client, source, monkeypatch, settings
):
    def crash(**kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(inbound, "lead_ingest", crash)

    response = _deliver(client, LEAD)

    assert response.status_code == 202
    delivery = InboundDelivery.objects.get()
    assert delivery.status == SubmissionStatus.PENDING
    assert "database hiccup" in delivery.error
    assert Lead.objects.count() == 0

    monkeypatch.undo()
    settings.LEADCRM = {**settings.LEADCRM, "SWEEP_AFTER_SECONDS": 0}
    assert inbound.delivery_sweep_pending() == 1
    delivery.refresh_from_db()
    assert delivery.status == SubmissionStatus.PROCESSED
    assert Lead.objects.count() == 1


def test_the_endpoint_answers_only_posts(client, source):
    assert client.get("/in/fb-q4/").status_code == 405


@pytest.mark.parametrize(
    "created_time",
    [
        "1970-01-01T00:00:00Z",
        "0001-01-01T00:00:00+07:00",
        "9999-12-31T23:59:59-07:00",
        "2999-01-01T00:00:00Z",
        True,
        0,
        1e20,
        -1e12,
        "not a time",
        ["2026-11-01"],
    ],
)
def test_an_implausible_platform_time_is_the_delivery_time(
    client, source, created_time
):
    response = _deliver(client, {**LEAD, "created_time": created_time})

    assert response.status_code == 202
    delivery = InboundDelivery.objects.get()
    assert delivery.status == SubmissionStatus.PROCESSED
    assert Interaction.objects.get().occurred_at == delivery.received_at


def test_a_platform_time_in_seconds_is_read(client, source):
    _deliver(client, {**LEAD, "created_time": 1793500200.5})

    assert Interaction.objects.get().occurred_at.isoformat() == (
        "2026-11-01T02:30:00.500000+00:00"
    )


def test_a_content_length_that_is_not_a_number_is_a_bad_request(client, source):
    client.raise_request_exception = False

    response = client.post(
        "/in/fb-q4/", b"{}", content_type="application/json", CONTENT_LENGTH="abc"
    )

    assert response.status_code == 400
    assert InboundDelivery.objects.count() == 0
