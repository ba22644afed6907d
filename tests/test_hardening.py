"""What a hostile or careless client sends must never become a 500 or a
submission that can never be processed."""

import json
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import Submission, SubmissionStatus
from leads.models import Interaction, Lead
from leads.services import InteractionData, LeadData, lead_ingest
from scoring.services import rescore_if_stale, rescore_one

pytestmark = pytest.mark.django_db(transaction=True)


def post_json(client, body, **headers):
    return client.post("/f/ebook/", body, content_type="application/json", **headers)


def test_nul_and_lone_surrogates_are_stripped_not_a_500(client, web_form):
    body = '{"email": "a@example.com", "note": "a\\u0000b\\ud800c", "x\\u0000": "1"}'

    response = post_json(client, body)

    assert response.status_code == 202
    lead = Lead.objects.get()
    assert lead.custom == {"note": "abc", "x": "1"}


def test_deeply_nested_json_is_a_400(client, web_form):
    response = post_json(client, "[" * 50_000)

    assert response.status_code == 400
    assert Submission.objects.count() == 0


def test_overlong_profile_values_are_cut_to_fit(client, web_form):
    response = post_json(
        client,
        json.dumps(
            {
                "email": "long@example.com",
                "full_name": "N" * 2000,
                "utm_source": "u" * 150,
            }
        ),
    )

    assert response.status_code == 202
    lead = Lead.objects.get()
    assert len(lead.full_name) == 200
    assert len(lead.source) == 100
    assert Submission.objects.get().status == SubmissionStatus.PROCESSED


def test_an_overlong_email_is_refused_at_the_door(client, web_form):
    email = "a" * 64 + "@" + ".".join(["b" * 50] * 4) + ".com"

    response = post_json(client, json.dumps({"email": email}))

    assert response.status_code == 400
    assert Submission.objects.count() == 0


def test_a_blank_email_is_refused_at_the_door(client, web_form):
    response = post_json(client, json.dumps({"email": "   "}))

    assert response.status_code == 400


def test_implausible_interaction_times_are_refused():
    for when in (datetime(1980, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)):
        with pytest.raises(ValidationError):
            lead_ingest(
                data=LeadData(email="old@example.com"),
                interactions=[
                    InteractionData(kind="page_visit", channel="api", occurred_at=when)
                ],
            )

    assert Lead.objects.count() == 0


@pytest.mark.postgres
def test_ancient_activity_decays_to_nothing_without_breaking_the_batch():
    lead = lead_ingest(
        data=LeadData(email="legacy@example.com"),
        interactions=[InteractionData(kind="demo_request", channel="import")],
    ).lead
    # A row from before the plausibility check, as an old import left it.
    Interaction.objects.filter(lead=lead).update(
        occurred_at=datetime(1900, 1, 1, tzinfo=UTC)
    )

    outcome = rescore_one(lead_id=lead.pk)

    lead.refresh_from_db()
    assert outcome.scored == 1
    assert lead.engagement_score == 0


def test_a_recompute_with_nothing_new_does_nothing():
    lead = lead_ingest(data=LeadData(email="an@example.com")).lead

    assert Lead.objects.get(pk=lead.pk).score_stale is False
    assert rescore_if_stale(lead_id=lead.pk) is False


def test_an_idempotency_key_reused_for_another_person_is_a_409(client, user):
    client.force_login(user)
    first = client.post(
        "/api/leads/",
        {"email": "one@example.com", "idempotency_key": "k-1"},
        content_type="application/json",
    )
    second = client.post(
        "/api/leads/",
        {"email": "two@example.com", "idempotency_key": "k-1"},
        content_type="application/json",
    )

    assert first.status_code == 201
    assert second.status_code == 409
    assert list(Lead.objects.values_list("email", flat=True)) == ["one@example.com"]


def test_a_user_without_a_role_sees_no_lead(client, django_user_model):
    lead = lead_ingest(data=LeadData(email="an@example.com")).lead
    nobody = django_user_model.objects.create_user("nobody", password="x-long-pass")
    client.force_login(nobody)

    assert client.get(f"/leads/{lead.pk}/").status_code == 404
    assert client.get(f"/api/leads/{lead.pk}/").status_code == 404
    assert client.get("/api/leads/").json()["count"] == 0
    refused = client.post(
        "/api/leads/", {"email": "b@example.com"}, content_type="application/json"
    )
    assert refused.status_code == 403
    assert Lead.objects.count() == 1


def test_a_crash_while_processing_is_kept_on_the_submission(
    client, web_form, monkeypatch
):
    import campaigns.services

    def explode(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(campaigns.services, "lead_ingest_many", explode)

    response = post_json(client, json.dumps({"email": "a@example.com"}))

    submission = Submission.objects.get()
    assert response.status_code == 202
    assert submission.status == SubmissionStatus.PENDING
    assert submission.error == "RuntimeError: database on fire"
    assert submission.attempts == 1


def test_the_api_answers_400_to_json_nested_too_deep(client, user):
    client.force_login(user)

    response = client.post("/api/leads/", "[" * 50_000, content_type="application/json")

    assert response.status_code == 400
