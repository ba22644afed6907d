"""Spam defences, consent records and double opt-in on the capture path."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail

from campaigns import ratelimit
from campaigns.models import (
    ConsentRecord,
    FormField,
    SpamReason,
    Submission,
    SubmissionStatus,
)
from campaigns.selectors import forget_forms
from campaigns.services import submission_release, webform_consent_set
from campaigns.spam import render_token
from leads.models import Interaction, Lead
from tests import services

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_limiter():
    forget_forms()
    ratelimit.reset_backoff()
    yield
    ratelimit.reset_backoff()


def limiter(settings, url: str, *, per_ip: int = 20, per_form: int = 600) -> None:
    settings.LEADCRM = {
        **settings.LEADCRM,
        "RATE_LIMIT_REDIS_URL": url,
        "RATE_LIMIT_PER_IP": per_ip,
        "RATE_LIMIT_PER_FORM": per_form,
    }


def assert_nothing_created():
    assert Lead.objects.count() == 0
    assert Interaction.objects.count() == 0
    assert ConsentRecord.objects.count() == 0


def test_a_filled_honeypot_is_answered_as_usual_and_logged_as_spam(client, web_form):
    response = client.post(
        "/f/ebook/", {"email": "bot@example.com", "website": "http://spam.example"}
    )

    assert response.status_code == 303
    assert response["Location"] == "/f/ebook/thanks/"
    spam = Submission.objects.get()
    assert (spam.status, spam.spam_reason) == (
        SubmissionStatus.SPAM,
        SpamReason.HONEYPOT,
    )
    assert_nothing_created()


def test_a_post_sooner_than_the_minimum_after_the_form_was_shown_is_spam(
    client, web_form
):
    with time_machine.travel(T0, tick=False):
        token = render_token("ebook")
    with time_machine.travel(T0 + timedelta(seconds=1), tick=False):
        response = client.post("/f/ebook/", {"email": "an@example.com", "_ts": token})

    assert response.status_code == 303
    assert Submission.objects.get().spam_reason == SpamReason.TOO_FAST
    assert_nothing_created()


def test_a_post_after_the_minimum_with_a_valid_token_becomes_a_lead(client, web_form):
    with time_machine.travel(T0, tick=False):
        token = render_token("ebook")
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        client.post("/f/ebook/", {"email": "an@example.com", "_ts": token})

    assert Submission.objects.get().status == SubmissionStatus.PROCESSED
    assert "_ts" not in Submission.objects.get().payload
    assert Lead.objects.get().email == "an@example.com"


@pytest.mark.parametrize(
    "token",
    [
        "forged:token",
        render_token("another-form", now=T0.timestamp()),
        render_token("ebook", now=(T0 - timedelta(days=2)).timestamp()),
    ],
    ids=["forged", "other form", "stale"],
)
def test_a_forged_foreign_or_stale_token_is_spam(client, web_form, token):
    with time_machine.travel(T0, tick=False):
        client.post("/f/ebook/", {"email": "an@example.com", "_ts": token})

    assert Submission.objects.get().spam_reason == SpamReason.BAD_TOKEN
    assert_nothing_created()


def test_a_post_without_token_passes_unless_the_form_requires_one(client, web_form):
    client.post("/f/ebook/", {"email": "an@example.com"})
    assert Lead.objects.count() == 1

    web_form.require_render_token = True
    web_form.save()
    forget_forms()
    client.post("/f/ebook/", {"email": "binh@example.com"})

    assert Lead.objects.count() == 1
    assert Submission.objects.filter(spam_reason=SpamReason.NO_TOKEN).count() == 1


@pytest.mark.redis
def test_posts_over_the_per_ip_limit_are_spam(client, web_form, settings):
    import redis

    redis.Redis.from_url(services.redis_url()).flushdb()
    limiter(settings, services.redis_url(), per_ip=2)

    for number in range(3):
        response = client.post("/f/ebook/", {"email": f"p{number}@example.com"})
        assert response.status_code == 303

    assert Lead.objects.count() == 2
    spam = Submission.objects.get(status=SubmissionStatus.SPAM)
    assert spam.spam_reason == SpamReason.RATE_LIMIT
    # Another address is counted apart.
    client.post("/f/ebook/", {"email": "p9@example.com"}, REMOTE_ADDR="10.0.0.9")
    assert Lead.objects.count() == 3


@pytest.mark.redis
def test_posts_over_the_per_form_limit_are_spam(client, web_form, settings):
    import redis

    redis.Redis.from_url(services.redis_url()).flushdb()
    limiter(settings, services.redis_url(), per_form=1)

    client.post("/f/ebook/", {"email": "a@example.com"}, REMOTE_ADDR="10.0.0.1")
    client.post("/f/ebook/", {"email": "b@example.com"}, REMOTE_ADDR="10.0.0.2")

    assert list(Lead.objects.values_list("email", flat=True)) == ["a@example.com"]
    assert Submission.objects.get(status="spam").spam_reason == SpamReason.RATE_LIMIT


def test_the_limiter_fails_open_when_redis_is_unreachable(client, web_form, settings):
    # Nothing listens on port 1: every connection is refused.
    limiter(settings, "redis://127.0.0.1:1/0", per_ip=0, per_form=0)

    for number in range(3):
        response = client.post("/f/ebook/", {"email": f"p{number}@example.com"})
        assert response.status_code == 303

    assert Lead.objects.count() == 3
    assert not Submission.objects.filter(status=SubmissionStatus.SPAM).exists()


def test_a_released_spam_post_is_processed_like_any_other(client, web_form, make_user):
    marketer = make_user("marketer", perms=("campaigns.change_submission",))
    client.post("/f/ebook/", {"email": "real@example.com", "website": "x"})
    spam = Submission.objects.get()
    assert_nothing_created()

    submission_release(submission_id=spam.pk, by=marketer)

    spam.refresh_from_db()
    assert spam.status == SubmissionStatus.PROCESSED
    assert spam.released_by == marketer
    assert spam.spam_reason == SpamReason.HONEYPOT
    assert Lead.objects.get().email == "real@example.com"
    assert Interaction.objects.count() == 1


def test_required_builder_fields_are_enforced(client, web_form):
    FormField.objects.create(form=web_form, name="email", required=True)
    FormField.objects.create(form=web_form, name="company", required=True)
    forget_forms()

    response = client.post(
        "/f/ebook/",
        {"email": "an@example.com"},
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"company"}
    assert Submission.objects.count() == 0


def consent_form(web_form, *, double: bool):
    web_form.double_opt_in = double
    web_form.save()
    FormField.objects.create(form=web_form, name="email", required=True)
    FormField.objects.create(form=web_form, name="consent")
    webform_consent_set(
        form=web_form,
        purpose="Marketing emails",
        text_en="I agree to receive marketing emails.",
        text_vi="Tôi đồng ý nhận email tiếp thị.",
    )
    forget_forms()
    return web_form


def test_consent_is_recorded_with_purpose_version_time_and_source(client, web_form):
    consent_form(web_form, double=False)

    with time_machine.travel(T0, tick=False):
        client.post(
            "/f/ebook/",
            {"email": "an@example.com", "consent": "on"},
            HTTP_REFERER="https://shop.example.vn/ebook",
            HTTP_ACCEPT_LANGUAGE="vi",
        )

    record = ConsentRecord.objects.get()
    assert record.purpose == "Marketing emails"
    assert record.consent_text.version == 1
    assert record.given_at == T0
    assert record.source == "web form ebook on https://shop.example.vn/ebook"
    assert record.language == "vi"
    assert record.lead.email_consent is True
    assert record.is_effective


def test_a_changed_consent_text_is_a_new_version_and_old_records_keep_theirs(
    client, web_form
):
    consent_form(web_form, double=False)
    client.post("/f/ebook/", {"email": "an@example.com", "consent": "1"})
    webform_consent_set(
        form=web_form, purpose="Marketing emails", text_en="New words.", text_vi=""
    )
    forget_forms()
    client.post("/f/ebook/", {"email": "binh@example.com", "consent": "1"})

    versions = dict(
        ConsentRecord.objects.values_list("lead__email", "consent_text__version")
    )
    assert versions == {"an@example.com": 1, "binh@example.com": 2}


def test_an_unticked_consent_box_records_nothing(client, web_form):
    consent_form(web_form, double=False)

    client.post("/f/ebook/", {"email": "an@example.com"})

    assert Lead.objects.get().email_consent is None
    assert ConsentRecord.objects.count() == 0


def confirm_path() -> str:
    (message,) = mail.outbox
    url = re.search(r"https?://\S+/consent/confirm/\S+/", message.body).group(0)
    return urlsplit(url).path


def test_double_opt_in_starts_email_consent_at_confirmation(client, web_form):
    consent_form(web_form, double=True)

    client.post("/f/ebook/", {"email": "an@example.com", "consent": "on"})

    lead = Lead.objects.get()
    record = ConsentRecord.objects.get()
    assert lead.email_consent is None
    assert record.double_opt_in and record.confirmed_at is None
    assert record.confirmation_sent_at is not None
    assert mail.outbox[0].to == ["an@example.com"]
    path = confirm_path()

    # Opening the link (a mail scanner may) confirms nothing by itself.
    assert client.get(path).status_code == 200
    assert ConsentRecord.objects.get().confirmed_at is None
    response = client.post(path)

    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.email_consent is True
    assert ConsentRecord.objects.get().confirmed_at is not None
    assert client.post(path).status_code == 200


def test_a_confirmation_link_with_a_bad_signature_is_refused(client, web_form):
    consent_form(web_form, double=True)
    client.post("/f/ebook/", {"email": "an@example.com", "consent": "on"})
    path = confirm_path()

    response = client.post(path[:-3] + "xx/")

    assert response.status_code == 400
    assert b"not valid" in response.content
    assert Lead.objects.get().email_consent is None


def test_an_expired_confirmation_link_is_refused(client, web_form):
    consent_form(web_form, double=True)
    with time_machine.travel(T0, tick=False):
        client.post("/f/ebook/", {"email": "an@example.com", "consent": "on"})
    path = confirm_path()

    with time_machine.travel(T0 + timedelta(days=8), tick=False):
        response = client.post(path)

    assert response.status_code == 400
    assert b"expired" in response.content
    assert Lead.objects.get().email_consent is None
    assert ConsentRecord.objects.get().confirmed_at is None


def test_the_hosted_form_carries_a_token_utm_and_the_visitors_language(
    client, web_form
):
    consent_form(web_form, double=False)
    FormField.objects.filter(name="email").update(label_en="Email", label_vi="Thư")

    response = client.get(
        "/f/ebook/?utm_source=zalo&utm_campaign=tet", HTTP_ACCEPT_LANGUAGE="vi"
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="_ts" value="' in html
    assert 'name="utm_source" value="zalo"' in html
    assert "Thư" in html
    assert "Tôi đồng ý nhận email tiếp thị." in html


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "127.0.0.1"),
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        (2, "198.51.100.1, 203.0.113.9", "198.51.100.1"),
        (3, "203.0.113.9", "127.0.0.1"),
    ],
)
def test_the_client_address_trusts_only_the_configured_proxies(
    rf, settings, hops, forwarded, expected
):
    from campaigns.views import client_ip

    settings.LEADCRM = {**settings.LEADCRM, "PROXY_COUNT": hops}
    request = rf.post("/f/ebook/", HTTP_X_FORWARDED_FOR=forwarded)

    assert client_ip(request) == expected


def test_a_post_naming_another_campaigns_utm_code_is_that_campaigns_touch(
    client, web_form
):
    from campaigns.models import Campaign

    newsletter = Campaign.objects.create(name="May newsletter", utm_campaign="may-nl")

    client.post("/f/ebook/", {"email": "an@example.com", "utm_campaign": "MAY-NL"})
    client.post("/f/ebook/", {"email": "an@example.com", "utm_campaign": "unknown"})

    lead = Lead.objects.get()
    assert lead.first_touch_campaign == newsletter
    assert lead.last_touch_campaign == web_form.campaign
    # The form's own interactions count for the form's campaign.
    assert set(Interaction.objects.values_list("campaign", flat=True)) == {
        web_form.campaign_id
    }


@pytest.mark.django_db(transaction=False)
def test_a_post_costs_one_insert_once_the_form_is_cached(
    client, web_form, django_assert_num_queries
):
    # In a test transaction nothing commits, so processing (after commit)
    # stays out of the count: this is the request's own work.
    client.post("/f/ebook/", {"email": "an@example.com"})

    with django_assert_num_queries(1):
        response = client.post("/f/ebook/", {"email": "binh@example.com"})

    assert response.status_code == 303


def test_the_token_endpoint_answers_allowed_origins_only(client, web_form):
    from campaigns.spam import token_problem

    web_form.allowed_origins = "https://shop.example.vn"
    web_form.min_fill_seconds = 0
    web_form.save()
    forget_forms()

    allowed = client.get("/f/ebook/token/", HTTP_ORIGIN="https://shop.example.vn")
    other = client.get("/f/ebook/token/", HTTP_ORIGIN="https://evil.example")

    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example.vn"
    assert "Access-Control-Allow-Origin" not in other
    assert allowed.json()["field"] == "_ts"
    assert token_problem(web_form, allowed.json()["token"]) == ""
    assert client.get("/f/nope/token/").status_code == 404


def test_an_inactive_forms_hosted_page_is_not_found(client, web_form):
    web_form.is_active = False
    web_form.save()
    forget_forms()

    assert client.get("/f/ebook/").status_code == 404
