from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Max

from campaigns.demo import GENERATED_LEADS, SAMPLE_FILE
from campaigns.models import Campaign, WebForm
from leads.models import Interaction, Lead, LevelChange
from tests import services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _debug(settings):
    """`make run` seeds with DEBUG on; the test runner turns it off."""
    settings.DEBUG = True


@pytest.fixture
def no_sample(settings, tmp_path):
    settings.LEADCRM = {**settings.LEADCRM, "SAMPLE_DATA_DIR": tmp_path}


@pytest.fixture
def small_sample(settings, tmp_path):
    """The first twenty rows of the sample, so the sample path runs quickly."""
    with services.sample_csv().open(encoding="utf-8") as source:
        head = [next(source) for _ in range(21)]
    (tmp_path / SAMPLE_FILE).write_text("".join(head), encoding="utf-8")
    settings.LEADCRM = {**settings.LEADCRM, "SAMPLE_DATA_DIR": tmp_path}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, object]:
    return {
        "users": get_user_model().objects.count(),
        "campaigns": Campaign.objects.count(),
        "forms": WebForm.objects.count(),
        "leads": Lead.objects.count(),
        "interactions": Interaction.objects.count(),
        "level_changes": LevelChange.objects.count(),
        "last_update": Lead.objects.aggregate(last=Max("updated_at"))["last"],
    }


def test_seeding_makes_the_users_the_campaign_and_its_form(no_sample):
    output = seed()

    users = get_user_model().objects
    admin, marketer = users.get(username="admin"), users.get(username="marketer")
    assert admin.is_superuser and admin.is_staff
    assert not (marketer.is_superuser or marketer.is_staff)
    assert admin.check_password("leadcrm-demo")
    assert marketer.check_password("leadcrm-demo")
    campaign = Campaign.objects.get()
    assert (campaign.name, campaign.kind, campaign.utm_campaign) == (
        "Vietnam Growth Webinar 2026",
        "webinar",
        "vn-growth-2026",
    )
    assert WebForm.objects.get(key="demo").campaign == campaign
    assert "http://127.0.0.1:8000/" in output
    assert "http://127.0.0.1:8000/static/demo/form.html" in output
    assert "leadcrm-demo" in output


def test_without_the_sample_vietnamese_leads_are_made_up_and_scored(no_sample):
    seed()

    leads = Lead.objects.all()
    assert leads.count() == GENERATED_LEADS
    assert not leads.filter(score_stale=True).exists()
    assert all(lead.email or lead.phone for lead in leads)
    assert all(lead.phone.startswith("+84") for lead in leads if lead.phone)
    assert any(not lead.full_name.isascii() for lead in leads)
    assert Interaction.objects.filter(kind="webinar_registration").exists()
    assert leads.filter(first_touch_campaign__utm_campaign="vn-growth-2026").exists()


def test_the_made_up_leads_are_the_same_every_time(no_sample):
    seed()
    first = sorted(Lead.objects.values_list("email", "phone", "full_name", "company"))
    Lead.objects.all().delete()

    seed()

    again = sorted(Lead.objects.values_list("email", "phone", "full_name", "company"))
    assert again == first


def test_seeding_twice_changes_nothing_the_second_time(no_sample):
    seed()
    before = snapshot()

    output = seed()

    assert snapshot() == before
    assert "0 new" in output


@pytest.mark.sample_data
def test_with_the_sample_present_seeding_imports_it_once(small_sample):
    seed()
    before = snapshot()

    seed()

    assert before["leads"] == 20
    assert Lead.objects.filter(
        external_id="2a272436-5132-4136-86fa-dcc88c88f482", source="Organic Search"
    ).exists()
    assert snapshot() == before


def test_seeding_is_refused_when_debug_is_off(no_sample, settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG is off"):
        seed()
    assert not Lead.objects.exists()

    seed("--force")
    assert Lead.objects.count() == GENERATED_LEADS
