import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from leads.models import Channel, Interaction, Lead, LeadQuerySet

LIST_URL = reverse("api:lead-list")


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def _detail_url(lead: Lead) -> str:
    return reverse("api:lead-detail", args=[lead.pk])


@pytest.mark.django_db
def test_the_api_requires_authentication(make_lead):
    lead = make_lead(email="an@example.com")
    client = APIClient()

    assert client.get(LIST_URL).status_code == 403
    assert client.get(_detail_url(lead)).status_code == 403
    assert client.post(LIST_URL, {"email": "x@example.com"}).status_code == 403
    assert Lead.objects.count() == 1


@pytest.mark.django_db
def test_basic_auth_works_for_scripts(user, make_lead):
    make_lead(email="an@example.com")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=_basic("marketer", "a-long-test-password"))

    response = client.get(LIST_URL)

    assert response.status_code == 200
    assert response.json()["count"] == 1


def _basic(username: str, password: str) -> str:
    import base64

    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


@pytest.mark.django_db
def test_the_list_is_paginated_and_searchable_like_the_page(api, make_lead):
    make_lead(email="an@example.com", full_name="Nguyễn Văn An", phone="0912345678")
    make_lead(email="binh@example.com", full_name="Trần Bình")

    everything = api.get(LIST_URL).json()
    by_name = api.get(LIST_URL, {"q": "nguyen"}).json()
    by_phone = api.get(LIST_URL, {"q": "0912 345 678"}).json()

    assert everything["count"] == 2
    assert {"next", "previous", "results"} <= set(everything)
    assert [lead["full_name"] for lead in by_name["results"]] == ["Nguyễn Văn An"]
    assert [lead["phone"] for lead in by_phone["results"]] == ["+84912345678"]


@pytest.mark.django_db
def test_the_list_filters_by_level_and_temperature(api, make_lead):
    make_lead(email="an@example.com")

    assert api.get(LIST_URL, {"level": "iql"}).json()["count"] == 1
    assert api.get(LIST_URL, {"level": "mql"}).json()["count"] == 0
    assert api.get(LIST_URL, {"temperature": "hot"}).json()["count"] == 0
    assert api.get(LIST_URL, {"level": "nonsense"}).status_code == 400


@pytest.mark.django_db
def test_creating_a_lead_goes_through_the_ingest(
    api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            LIST_URL,
            {
                "email": " An.Nguyen@Example.COM ",
                "phone": "0912 345 678",
                "full_name": "Nguyễn  Văn An",
                "company": "Sao Mai",
                "kind": "demo_request",
                "utm": {"utm_source": "partner"},
            },
            format="json",
        )

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "an.nguyen@example.com"
    assert body["phone"] == "+84912345678"
    assert body["full_name"] == "Nguyễn Văn An"
    assert body["source"] == "api"
    assert body["first_touch_utm"] == {"utm_source": "partner"}
    assert response["Location"] == reverse("api:lead-detail", args=[body["id"]])
    interaction = Interaction.objects.get()
    assert (interaction.kind, interaction.channel) == ("demo_request", Channel.API)
    assert Lead.objects.get().score > 0  # rescored once the ingest committed


@pytest.mark.django_db
def test_posting_a_known_person_again_merges_into_the_lead(api, make_lead):
    lead = make_lead(email="an@example.com", full_name="An")

    response = api.post(
        LIST_URL, {"email": "AN@example.com", "company": "Sao Mai"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["id"] == lead.pk
    assert Lead.objects.count() == 1
    lead.refresh_from_db()
    assert lead.company == "Sao Mai"
    assert lead.interactions.get().kind == "other"


@pytest.mark.django_db
def test_an_idempotency_key_records_the_interaction_once(api):
    payload = {"email": "an@example.com", "idempotency_key": "crm-42"}

    first = api.post(LIST_URL, payload, format="json")
    second = api.post(LIST_URL, payload, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert Interaction.objects.get().idempotency_key == "api:crm-42"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"full_name": "No contact"}, {"email"}),
        ({"email": "an@", "phone": "12"}, {"email", "phone"}),
        ({"email": "an@example.com", "kind": "telepathy"}, {"kind"}),
        ({"email": "an@example.com", "utm": {"utm_colour": "red"}}, {"utm"}),
    ],
)
def test_invalid_data_gets_400_with_field_errors(api, payload, fields):
    response = api.post(LIST_URL, payload, format="json")

    assert response.status_code == 400
    assert set(response.json()) == fields
    assert Lead.objects.count() == 0


@pytest.mark.django_db
def test_score_fields_cannot_be_written(api):
    response = api.post(
        LIST_URL,
        {"email": "an@example.com", "score": 999, "level": "sql"},
        format="json",
    )

    assert response.status_code == 201
    lead = Lead.objects.get()
    assert (lead.score, lead.level) == (0, "iql")


@pytest.mark.django_db
def test_retrieve_returns_the_lead_with_its_score_parts(api, make_lead):
    lead = make_lead(email="an@example.com", company="Sao Mai", score=True)

    body = api.get(_detail_url(lead)).json()

    assert body["id"] == lead.pk
    assert body["score"] == lead.score == body["engagement_score"] + body["fit_score"]
    assert {line["part"] for line in body["score_breakdown"]} == {"fit"}


@pytest.mark.django_db
def test_leads_the_user_may_not_see_are_404_and_unlisted(api, make_lead, monkeypatch):
    lead = make_lead(email="an@example.com")
    monkeypatch.setattr(LeadQuerySet, "visible_to", lambda self, user: self.none())

    assert api.get(_detail_url(lead)).status_code == 404
    assert api.get(LIST_URL).json()["count"] == 0


@pytest.mark.django_db
def test_a_missing_lead_is_404(api):
    assert api.get(reverse("api:lead-detail", args=[999999])).status_code == 404
