import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import reverse

from campaigns.models import Submission, SubmissionStatus
from leads.models import Channel, Interaction, Lead, LevelChange
from leads.services import InteractionData

MODELS = [
    ("leads", "lead"),
    ("leads", "interaction"),
    ("leads", "levelchange"),
    ("campaigns", "campaign"),
    ("campaigns", "webform"),
    ("campaigns", "submission"),
]
APPEND_ONLY = {"interaction", "levelchange", "submission"}


@pytest.fixture
def some_of_everything(make_lead, web_form):
    lead = make_lead(
        email="an@example.com",
        full_name="Nguyễn Văn An",
        interactions=[InteractionData(kind="form_submit", channel="web_form")],
        score=True,
    )
    Submission.objects.create(form=web_form, payload={"email": "an@example.com"})
    return lead


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "model"), MODELS)
def test_every_changelist_loads_and_searches_for_a_superuser(
    admin_client, some_of_everything, app, model
):
    url = reverse(f"admin:{app}_{model}_changelist")

    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "nguyen"}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "model"), MODELS)
def test_add_pages_load_except_for_append_only_logs(admin_client, app, model):
    response = admin_client.get(reverse(f"admin:{app}_{model}_add"))

    assert response.status_code == (403 if model in APPEND_ONLY else 200)


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "model"), MODELS)
def test_change_pages_load(admin_client, some_of_everything, app, model):
    from django.apps import apps

    obj = apps.get_model(app, model).objects.first()

    response = admin_client.get(reverse(f"admin:{app}_{model}_change", args=[obj.pk]))

    assert response.status_code == 200


@pytest.mark.django_db
def test_admin_search_ignores_diacritics_and_reads_phones(admin_client, make_lead):
    make_lead(phone="0912345678", full_name="Nguyễn Văn An")
    make_lead(email="binh@example.com", full_name="Trần Bình")
    url = reverse("admin:leads_lead_changelist")

    by_name = admin_client.get(url, {"q": "nguyen van"})
    by_phone = admin_client.get(url, {"q": "+84 912 345 678"})

    assert [lead.full_name for lead in by_name.context["cl"].result_list] == [
        "Nguyễn Văn An"
    ]
    assert by_phone.context["cl"].result_count == 1


@pytest.mark.django_db
def test_adding_a_lead_in_admin_normalises_it_through_the_ingest(admin_client):
    response = admin_client.post(
        reverse("admin:leads_lead_add"),
        {
            "email": "  Mai.Tran@Example.COM ",
            "phone": "0912 345 678",
            "full_name": "Trần  Thị Mai",
            "company": "Sao Mai",
            "email_consent": "unknown",
            "known_outcome": "unknown",
        },
    )

    assert response.status_code == 302
    lead = Lead.objects.get()
    assert (lead.email, lead.phone) == ("mai.tran@example.com", "+84912345678")
    assert lead.full_name == "Trần Thị Mai"
    assert lead.source == "admin"
    assert "tran thi mai" in lead.search_text
    assert Interaction.objects.get(lead=lead).channel == Channel.ADMIN
    assert LevelChange.objects.get(lead=lead).rule == "contact_details_known"


@pytest.mark.django_db
def test_adding_a_lead_without_email_or_phone_shows_the_ingest_error(admin_client):
    response = admin_client.post(
        reverse("admin:leads_lead_add"),
        {"full_name": "Nobody", "email_consent": "unknown", "known_outcome": "unknown"},
    )

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert Lead.objects.count() == 0


@pytest.mark.django_db
def test_adding_a_known_email_is_a_form_error(admin_client, make_lead):
    make_lead(email="an@example.com")

    response = admin_client.post(
        reverse("admin:leads_lead_add"),
        {
            "email": "AN@example.com",
            "email_consent": "unknown",
            "known_outcome": "unknown",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"]
    assert Lead.objects.count() == 1


def _change_data(lead: Lead, **changes) -> dict:
    from leads.services import EDITABLE_FIELDS

    # The read-only BANT inline still posts its (empty) management form.
    inline = {"bant-TOTAL_FORMS": "0", "bant-INITIAL_FORMS": "0"}
    return {name: getattr(lead, name) for name in EDITABLE_FIELDS} | inline | changes


@pytest.mark.django_db
def test_editing_a_lead_to_a_duplicate_email_is_a_form_error(admin_client, make_lead):
    make_lead(email="an@example.com")
    other = make_lead(email="binh@example.com", phone="0987654321")
    url = reverse("admin:leads_lead_change", args=[other.pk])

    response = admin_client.post(url, _change_data(other, email=" AN@Example.com"))

    assert response.status_code == 200
    assert (
        "Another lead has this email."
        in response.context["adminform"].form.errors["email"][0]
    )
    other.refresh_from_db()
    assert other.email == "binh@example.com"


@pytest.mark.django_db
def test_editing_a_lead_changes_its_profile_and_search_text(admin_client, make_lead):
    lead = make_lead(email="an@example.com", full_name="An", score=True)
    url = reverse("admin:leads_lead_change", args=[lead.pk])

    response = admin_client.post(
        url,
        _change_data(
            lead, full_name="Nguyễn Văn An", phone="+84 912 345 678", score="999"
        ),
    )

    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.full_name == "Nguyễn Văn An"
    assert lead.phone == "+84912345678"
    assert "nguyen van an" in lead.search_text
    assert lead.score != 999  # derived, not editable
    assert lead.score_stale


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Interaction, LevelChange, Submission])
def test_logs_are_read_only_and_only_superusers_delete(
    rf, admin_user, django_user_model, model
):
    staff = django_user_model.objects.create_user(
        username="staff", password="a-long-test-password", is_staff=True
    )
    staff.user_permissions.set(
        Permission.objects.filter(content_type__model=model._meta.model_name)
    )
    model_admin = admin.site._registry[model]
    as_staff, as_superuser = rf.get("/"), rf.get("/")
    as_staff.user, as_superuser.user = staff, admin_user

    assert model_admin.has_view_permission(as_staff)
    assert not model_admin.has_add_permission(as_superuser)
    assert not model_admin.has_change_permission(as_superuser)
    assert not model_admin.has_delete_permission(as_staff)
    assert model_admin.has_delete_permission(as_superuser)


@pytest.mark.django_db
def test_posting_a_change_to_an_interaction_is_refused(admin_client, make_lead):
    lead = make_lead(
        email="an@example.com",
        interactions=[InteractionData(kind="form_submit", channel="web_form")],
    )
    interaction = lead.interactions.get()

    response = admin_client.post(
        reverse("admin:leads_interaction_change", args=[interaction.pk]),
        {"kind": "demo_request", "quantity": 30},
    )

    assert response.status_code == 403
    interaction.refresh_from_db()
    assert interaction.kind == "form_submit"


@pytest.mark.django_db
def test_reprocess_sends_failed_submissions_back_to_work(
    admin_client, web_form, django_capture_on_commit_callbacks
):
    failed = Submission.objects.create(
        form=web_form,
        payload={"email": "an@example.com", "full_name": "An"},
        status=SubmissionStatus.FAILED,
        attempts=9,
        error="Gave up after 8 attempts.",
    )
    spam = Submission.objects.create(
        form=web_form,
        payload={"email": "bot@example.com"},
        status=SubmissionStatus.SPAM,
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:campaigns_submission_changelist"),
            {"action": "reprocess", "_selected_action": [failed.pk, spam.pk]},
        )

    assert response.status_code == 302
    failed.refresh_from_db()
    spam.refresh_from_db()
    assert failed.status == SubmissionStatus.PROCESSED
    assert failed.lead.email == "an@example.com"
    assert spam.status == SubmissionStatus.SPAM


@pytest.mark.django_db
def test_the_web_form_page_shows_an_embed_snippet_with_a_honeypot(
    admin_client, web_form
):
    response = admin_client.get(
        reverse("admin:campaigns_webform_change", args=[web_form.pk])
    )

    html = response.content.decode()
    assert (
        "&lt;form method=&quot;post&quot; action=&quot;http://testserver/f/ebook/"
        in html
    )
    assert "name=&quot;website&quot;" in html
    assert "tabindex=&quot;-1&quot;" in html
