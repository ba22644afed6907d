"""Campaign pages, the form builder and the spam log."""

import pytest
from django.urls import reverse

from campaigns.models import Campaign, ConsentText, FormField, Submission, WebForm
from campaigns.selectors import forget_forms
from leads.models import Lead

MARKETER_PERMS = (
    "campaigns.view_campaign",
    "campaigns.add_campaign",
    "campaigns.change_campaign",
    "campaigns.add_webform",
    "campaigns.change_webform",
    "campaigns.view_submission",
    "campaigns.change_submission",
)


@pytest.fixture
def marketer(make_user):
    return make_user("marketer", perms=MARKETER_PERMS)


@pytest.fixture
def signed_in(client, marketer):
    client.force_login(marketer)
    return client


def campaign_data(**overrides):
    data = {
        "name": "Tết ebook",
        "kind": "ebook",
        "utm_campaign": "tet-ebook",
        "starts_on": "2026-01-10",
        "ends_on": "2026-02-10",
        "budget": "50000000",
        "currency": "vnd",
        "owner": "",
    }
    return {**data, **overrides}


@pytest.mark.django_db
def test_a_marketer_creates_a_campaign(signed_in, marketer):
    response = signed_in.post(reverse("campaigns:create"), campaign_data())

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:detail", args=[campaign.pk])
    assert campaign.currency == "VND"
    assert campaign.budget == 50_000_000


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ends_on": "2026-01-01"}, "ends_on"),
        ({"budget": "-1"}, "budget"),
        ({"utm_campaign": "taken"}, "utm_campaign"),
    ],
    ids=["ends before start", "negative budget", "UTM code in use"],
)
def test_a_campaign_that_breaks_a_rule_is_refused_with_a_message(
    signed_in, overrides, field
):
    Campaign.objects.create(name="Other", utm_campaign="taken")

    response = signed_in.post(reverse("campaigns:create"), campaign_data(**overrides))

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert Campaign.objects.count() == 1


@pytest.mark.django_db
def test_editing_keeps_a_campaigns_own_utm_code(signed_in):
    campaign = Campaign.objects.create(name="A", utm_campaign="tet-ebook")

    response = signed_in.post(
        reverse("campaigns:edit", args=[campaign.pk]), campaign_data(name="B")
    )

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "B"


@pytest.mark.django_db
def test_the_list_searches_and_pages(signed_in, django_assert_max_num_queries):
    for number in range(30):
        Campaign.objects.create(name=f"Webinar {number}", utm_campaign=f"w-{number}")
    Campaign.objects.create(name="Hội chợ", utm_campaign="expo")

    with django_assert_max_num_queries(8):
        first = signed_in.get(reverse("campaigns:list"))
    found = signed_in.get(reverse("campaigns:list"), {"q": "expo"})
    past_end = signed_in.get(reverse("campaigns:list"), {"page": 99})

    assert len(first.context["campaigns"]) == 25
    assert [c.name for c in found.context["campaigns"]] == ["Hội chợ"]
    assert past_end.status_code == 200
    assert past_end.context["page_obj"].number == 2
    empty = signed_in.get(reverse("campaigns:list"), {"q": "nothing"})
    assert b"No campaign matches this search." in empty.content


@pytest.mark.django_db
def test_people_without_the_permission_cannot_see_campaigns(client, make_user):
    client.force_login(make_user("rep", perms=("leads.view_lead",)))

    assert client.get(reverse("campaigns:list")).status_code == 403
    assert client.get(reverse("campaigns:create")).status_code == 403
    client.logout()
    assert client.get(reverse("campaigns:list")).status_code == 302


@pytest.mark.django_db
def test_the_marketer_role_may_run_campaigns(client, make_user):
    client.force_login(make_user("maria", role="Marketer"))

    assert client.get(reverse("campaigns:list")).status_code == 200
    assert client.get(reverse("campaigns:spam_log")).status_code == 200


def builder_data(**overrides):
    data = {
        "name": "Tết form",
        "interaction_kind": "form_submit",
        "is_active": "on",
        "thank_you_message_en": "Thanks!",
        "thank_you_message_vi": "Cảm ơn!",
        "thank_you_url": "",
        "capture_utm": "on",
        "allowed_origins": "",
        "min_fill_seconds": "3",
        "consent_purpose": "Marketing emails",
        "consent_text_en": "I agree to marketing emails.",
        "consent_text_vi": "Tôi đồng ý.",
        "fields-TOTAL_FORMS": "3",
        "fields-INITIAL_FORMS": "0",
        "fields-MIN_NUM_FORMS": "0",
        "fields-MAX_NUM_FORMS": "1000",
    }
    rows = [
        ("email", "text", "Email", "Email", True),
        ("budget", "text", "", "Ngân sách", False),
        ("consent", "text", "", "", True),
    ]
    for index, (name, kind, label_en, label_vi, required) in enumerate(rows):
        data.update(
            {
                f"fields-{index}-name": name,
                f"fields-{index}-input_type": kind,
                f"fields-{index}-label_en": label_en,
                f"fields-{index}-label_vi": label_vi,
                f"fields-{index}-position": str(index),
            }
        )
        if required:
            data[f"fields-{index}-required"] = "on"
    return {**data, **overrides}


@pytest.mark.django_db
def test_the_builder_saves_a_form_with_fields_and_a_versioned_consent_text(signed_in):
    campaign = Campaign.objects.create(name="Tết", utm_campaign="tet")

    response = signed_in.post(
        reverse("campaigns:form_create", args=[campaign.pk]), builder_data()
    )

    form = WebForm.objects.get()
    assert response.status_code == 302
    assert form.campaign == campaign
    assert list(form.fields.values_list("name", "required")) == [
        ("email", True),
        ("budget", False),
        ("consent", True),
    ]
    assert form.consent_version == 1
    page = signed_in.get(response["Location"])
    snippet = page.context["snippet"]
    assert f'action="http://testserver/f/{form.key}/"' in snippet
    assert 'name="utm_campaign" value="tet"' in snippet
    assert 'name="website"' in snippet
    assert "campaigns/embed.js" in snippet

    # Saving the same wording again is not a new version.
    again = builder_data(**{"fields-INITIAL_FORMS": "3"})
    for index, field in enumerate(form.fields.all()):
        again[f"fields-{index}-id"] = str(field.pk)
    response = signed_in.post(reverse("campaigns:form_edit", args=[form.pk]), again)
    assert response.status_code == 302
    assert ConsentText.objects.count() == 1
    assert form.fields.count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fields-0-name": "full_name"}, b"email or a phone field"),
        ({"consent_text_en": "", "consent_purpose": ""}, b"needs the consent text"),
        ({"fields-1-name": "website"}, b"reserved"),
        ({"fields-1-name": "email"}, b"duplicate data"),
        ({"allowed_origins": "not an origin"}, b"is not an origin"),
        ({"double_opt_in": "on", "consent_text_en": ""}, b"Double opt-in needs"),
    ],
    ids=["no contact", "consent without text", "reserved", "twice", "origin", "doi"],
)
def test_the_builder_refuses_a_form_that_cannot_work(signed_in, overrides, message):
    campaign = Campaign.objects.create(name="Tết")

    response = signed_in.post(
        reverse("campaigns:form_create", args=[campaign.pk]), builder_data(**overrides)
    )

    assert response.status_code == 200
    assert message in response.content
    assert WebForm.objects.count() == 0
    assert FormField.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_spam_log_lists_spam_and_a_release_makes_the_lead(signed_in, web_form):
    forget_forms()
    signed_in.post("/f/ebook/", {"email": "real@example.com", "website": "x"})
    spam = Submission.objects.get()

    log = signed_in.get(reverse("campaigns:spam_log"), {"reason": "honeypot"})
    assert list(log.context["submissions"]) == [spam]
    assert b"real@example.com" in log.content

    response = signed_in.post(reverse("campaigns:spam_release", args=[spam.pk]))

    assert response.status_code == 302
    assert Lead.objects.get().email == "real@example.com"
    assert not signed_in.get(reverse("campaigns:spam_log")).context["submissions"]
    again = signed_in.post(reverse("campaigns:spam_release", args=[spam.pk]))
    assert again.status_code == 404


@pytest.mark.django_db
def test_releasing_needs_the_change_permission(client, make_user, web_form):
    spam = Submission.objects.create(form=web_form, payload={}, status="spam")
    client.force_login(make_user("viewer", perms=("campaigns.view_submission",)))

    response = client.post(reverse("campaigns:spam_release", args=[spam.pk]))

    assert response.status_code == 403
    spam.refresh_from_db()
    assert spam.status == "spam"


@pytest.mark.django_db
def test_the_spam_log_costs_the_same_queries_for_many_rows(
    signed_in, web_form, django_assert_num_queries
):
    for number in range(30):
        Submission.objects.create(
            form=web_form,
            payload={"email": f"bot{number}@example.com"},
            status="spam",
            spam_reason="honeypot",
        )

    # Session, user, the user's and the groups' permissions, count, page.
    with django_assert_num_queries(6):
        response = signed_in.get(reverse("campaigns:spam_log"))

    assert len(response.context["submissions"]) == 25
    assert response.context["paginator"].count == 30


def test_a_campaign_page_links_to_its_results(client, make_user):
    client.force_login(make_user("mai", role="Marketer"))
    campaign = Campaign.objects.create(name="Hội thảo CRM", kind="seminar")

    response = client.get(reverse("campaigns:detail", args=[campaign.pk]))

    results = reverse("campaigns:results", args=[campaign.pk])
    assert f'href="{results}"' in response.content.decode()
    assert client.get(results).status_code == 200
