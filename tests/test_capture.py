import json

import pytest

from campaigns.models import Submission, SubmissionStatus
from leads.models import Interaction, Lead

# Transactional: the processing task runs from transaction.on_commit, as in
# production, and Celery is eager in this module.
pytestmark = pytest.mark.django_db(transaction=True)


def test_a_browser_post_is_answered_303_and_becomes_a_lead(client, web_form):
    response = client.post(
        "/f/ebook/",
        {
            "email": "Mai@Example.com",
            "full_name": "Trần Thị Mai",
            "company": "Mai Co",
            "utm_source": "facebook",
            "favourite_colour": "blue",
        },
    )

    assert response.status_code == 303
    assert response["Location"] == "/f/ebook/thanks/"
    lead = Lead.objects.get()
    assert lead.email == "mai@example.com"
    assert lead.custom == {"favourite_colour": "blue"}
    assert lead.first_touch_utm == {"utm_source": "facebook"}
    assert lead.first_touch_campaign == web_form.campaign
    assert lead.scored_at is not None
    interaction = Interaction.objects.get()
    assert interaction.kind == "form_submit"
    assert interaction.campaign == web_form.campaign
    assert Submission.objects.get().status == SubmissionStatus.PROCESSED


def test_a_form_with_its_own_thank_you_page_redirects_there(client, web_form):
    web_form.thank_you_url = "https://example.com/thanks"
    web_form.save()

    response = client.post("/f/ebook/", {"phone": "0912345678"})

    assert response.status_code == 303
    assert response["Location"] == "https://example.com/thanks"


def test_a_json_post_gets_202_with_the_submission_id(client, web_form):
    response = client.post(
        "/f/ebook/",
        json.dumps({"phone": "+84 912 345 678", "first_name": "An"}),
        content_type="application/json",
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 202
    submission = Submission.objects.get()
    assert response.json() == {"id": submission.pk, "status": "accepted"}
    assert Lead.objects.get().phone == "+84912345678"


def test_no_valid_email_nor_phone_gets_400_with_field_errors(client, web_form):
    response = client.post(
        "/f/ebook/",
        json.dumps({"email": "an@", "phone": "12"}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"email", "phone"}
    assert Submission.objects.count() == 0
    assert Lead.objects.count() == 0


def test_a_browser_post_without_contact_details_gets_a_readable_400(client, web_form):
    response = client.post("/f/ebook/", {"full_name": "An"})

    assert response.status_code == 400
    page = response.content.decode()
    assert page.count("Enter an email address or a phone number.") == 1
    assert Submission.objects.count() == 0


def test_a_browser_post_with_a_bad_phone_names_the_field_once(client, web_form):
    response = client.post("/f/ebook/", {"full_name": "An", "phone": "12"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "<strong>Phone</strong>: Enter a valid phone number." in page
    assert "<strong>Email</strong>: Enter an email address or a phone number." in page
    assert page.count("Enter an email address or a phone number.") == 1


def test_a_filled_honeypot_is_answered_as_usual_and_kept_as_spam(client, web_form):
    response = client.post(
        "/f/ebook/", {"email": "bot@example.com", "website": "http://spam.example"}
    )

    assert response.status_code == 303
    assert Submission.objects.get().status == SubmissionStatus.SPAM
    assert Lead.objects.count() == 0


def test_an_unknown_or_inactive_form_is_404(client, web_form):
    assert client.post("/f/nope/", {"email": "a@example.com"}).status_code == 404
    web_form.is_active = False
    web_form.save()
    assert client.post("/f/ebook/", {"email": "a@example.com"}).status_code == 404


def test_an_oversized_body_is_refused(client, web_form, settings):
    settings.LEADCRM = {**settings.LEADCRM, "CAPTURE_MAX_BYTES": 100}

    response = client.post("/f/ebook/", {"email": "a@example.com", "x": "y" * 200})

    assert response.status_code == 413
    assert Submission.objects.count() == 0


def test_a_missing_contact_says_either_will_do(client, web_form):
    response = client.post(
        "/f/ebook/",
        json.dumps({"email": "an@", "full_name": "An"}),
        content_type="application/json",
    )

    errors = response.json()["errors"]
    assert response.status_code == 400
    assert errors["email"] == ["Enter a valid email address."]
    assert errors["phone"] == ["Enter an email address or a phone number."]


def test_a_json_body_that_is_not_an_object_is_a_400(client, web_form):
    response = client.post("/f/ebook/", "[1]", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"]["body"] == ["The JSON body must be an object."]


def test_an_unknown_form_answers_json_to_json(client, web_form):
    response = client.post(
        "/f/nope/",
        "{}",
        content_type="application/json",
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 404
    assert "form" in response.json()["errors"]


def test_malformed_json_is_a_400(client, web_form):
    response = client.post("/f/ebook/", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert "body" in response.json()["errors"]


def test_origins_outside_the_allowed_list_are_refused(client, web_form):
    web_form.allowed_origins = "https://shop.example.vn"
    web_form.save()

    refused = client.post(
        "/f/ebook/", {"email": "a@example.com"}, HTTP_ORIGIN="https://evil.example"
    )
    allowed = client.post(
        "/f/ebook/",
        {"email": "a@example.com"},
        HTTP_ORIGIN="https://shop.example.vn",
        HTTP_ACCEPT="application/json",
    )

    assert refused.status_code == 403
    assert allowed.status_code == 202
    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example.vn"


def test_a_get_shows_the_hosted_form_and_other_methods_are_not_allowed(
    client, web_form
):
    assert client.get("/f/ebook/").status_code == 200
    assert client.put("/f/ebook/").status_code == 405


def test_healthz_answers_while_the_database_does(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_quote_form_states_bant(client, web_form):
    client.post(
        "/f/ebook/",
        {
            "email": "an@vinatech.vn",
            "budget": "120.000.000",
            "need": "CRM cho đội bán hàng",
            "timeline": "30",
            "authority": "Giám đốc",
        },
    )

    lead = Lead.objects.get()
    stated = {b.criterion: b for b in lead.bant.all()}
    assert set(stated) == {"budget", "authority", "need", "timeline"}
    assert stated["budget"].amount == 120_000_000
    assert {b.status for b in stated.values()} == {"stated"}
    assert lead.bant_score == 4 * 5
    assert "budget" not in lead.custom


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("50.000.000", "VND", "50000000"),
        ("50,000,000 đ", "VND", "50000000"),
        ("50 000 000", "VND", "50000000"),
        ("1,250.50", "USD", "1250.50"),
        ("1.250,50", "EUR", "1250.50"),
        ("2,000", "USD", "2000"),
        ("", "VND", None),
        ("n/a", "VND", None),
        ("120.000.000,00", "VND", "120000000"),
        ("120,000,000.00", "VND", "120000000"),
        ("120 triệu", "VND", "120000000"),
        ("120tr", "VND", "120000000"),
        ("1,5 tỷ", "VND", "1500000000"),
        ("2 tỉ đồng", "VND", "2000000000"),
        ("1 tỷ 200 triệu", "VND", "1200000000"),
        ("500 nghìn", "VND", "500000"),
        ("50k", "VND", "50000"),
        # Ambiguous or unreadable: unknown rather than a wrong number.
        ("1.500 triệu", "VND", None),
        ("1.5", "VND", None),
        ("100-200 triệu", "VND", None),
        ("1.2.3", "VND", None),
        ("1 tỷ 2", "VND", None),
        # Too large to store: unknown, the lead is still created.
        ("9" * 30, "VND", None),
    ],
)
def test_budget_amounts_in_local_notation(raw, currency, expected):
    from decimal import Decimal

    from campaigns.services import parse_amount

    result = parse_amount(raw, currency)

    assert result == (Decimal(expected) if expected else None)
