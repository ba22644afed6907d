"""The X Education sample through the shipped mapping.

Importing 2,790 rows takes a while, so the module imports the sample once,
commits it, and removes it when the module is done; each test runs in its
own transaction on top and leaves the import as it found it.
"""

import pytest
from django.db.models import Q

from leads.importing import MAPPINGS_DIR, lead_import_csv, mapping_load
from leads.models import Interaction, Lead, LevelChange
from scoring.rulesets import preset_load, rule_set_from_preset
from scoring.services import rules_preview, score_recompute_many
from tests import services

pytestmark = [pytest.mark.sample_data, pytest.mark.django_db]

SAMPLE_ROWS = 2790


def import_sample():
    return lead_import_csv(
        path=services.sample_csv(),
        mapping=mapping_load(MAPPINGS_DIR / "x-education.json"),
        rescore=score_recompute_many,
    )


@pytest.fixture(scope="module")
def first_import(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        report = import_sample()
        yield report
        Lead.objects.all().delete()


def test_every_sample_row_imports_without_a_skip(first_import):
    assert first_import.created == SAMPLE_ROWS
    assert first_import.skipped == 0
    assert first_import.skipped_rows == []
    assert Lead.objects.count() == SAMPLE_ROWS


def test_every_imported_lead_is_scored(first_import):
    assert first_import.rescored == SAMPLE_ROWS
    assert not Lead.objects.filter(Q(scored_at=None) | Q(score_stale=True)).exists()


def test_a_known_row_arrives_with_its_fields_custom_data_and_interactions(
    first_import,
):
    lead = Lead.objects.get(external_id="2a272436-5132-4136-86fa-dcc88c88f482")

    assert (lead.email, lead.phone, lead.full_name) == ("", "", "")
    assert (lead.source, lead.origin) == ("Organic Search", "API")
    assert (lead.job_title, lead.country) == ("Unemployed", "India")
    # "Select" is the sample's placeholder for no answer.
    assert (lead.city, lead.industry) == ("", "")
    assert lead.email_consent is True
    assert lead.known_outcome is False
    assert lead.custom == {
        "lead_number": 660728,
        "tags": "Ringing",
        "asymmetrique_activity_index": "02.Medium",
        "asymmetrique_profile_index": "02.Medium",
        "asymmetrique_activity_score": 15,
        "asymmetrique_profile_score": 15,
        "what_matters_most": "Better Career Prospects",
        "free_copy_mastering_the_interview": False,
        "last_notable_activity": "Email Opened",
        "do_not_call": False,
        "seconds_on_site": 674,
        "total_visits": 5,
        "page_views_per_visit": 2.5,
    }
    interactions = {
        i.kind: (i.quantity, i.channel, i.subject, i.details)
        for i in lead.interactions.all()
    }
    assert interactions == {
        "page_visit": (
            5,
            "import",
            "",
            {"seconds_on_site": 674, "page_views_per_visit": 2.5},
        ),
        "email_open": (1, "import", "Email Opened", {"activity": "Email Opened"}),
    }


def test_a_row_without_visits_records_only_its_last_activity(first_import):
    # Prospect 2058ef08... visited 0 times; its last activity was a chat.
    lead = Lead.objects.get(external_id="2058ef08-2858-443e-a01f-a9237db2f5ce")

    assert list(lead.interactions.values_list("kind", "details")) == [
        ("chat", {"activity": "Olark Chat Conversation"})
    ]
    assert lead.known_outcome is False


def test_every_last_activity_value_of_the_sample_has_a_kind(first_import):
    unmapped = Interaction.objects.filter(kind="other").values_list(
        "details__activity", flat=True
    )

    assert set(unmapped) <= {"SMS Sent", "Unreachable"}


def test_importing_the_sample_again_changes_nothing(first_import):
    interactions = Interaction.objects.count()
    level_changes = LevelChange.objects.count()
    updated_at = Lead.objects.order_by("-updated_at").values_list(
        "updated_at", flat=True
    )[0]

    again = import_sample()

    assert (again.created, again.updated, again.skipped) == (0, 0, 0)
    assert again.unchanged == SAMPLE_ROWS
    assert Lead.objects.count() == SAMPLE_ROWS
    assert Interaction.objects.count() == interactions
    assert LevelChange.objects.count() == level_changes
    assert Lead.objects.filter(updated_at__gt=updated_at).count() == 0


def test_the_x_education_preset_ranks_converted_leads_first(first_import):
    draft = rule_set_from_preset(preset=preset_load("x-education"))

    preview = rules_preview(rules=draft.to_rules())

    assert preview.with_outcome == SAMPLE_ROWS
    assert preview.auc >= 0.84
    assert preview.conversion_rate("mql") > 2 * preview.conversion_rate("iql")
