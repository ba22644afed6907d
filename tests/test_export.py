import csv
import io
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from leads.exporting import EXPORT_COLUMNS
from leads.models import Lead
from leads.services import InteractionData, LeadData, lead_ingest
from scoring.services import score_recompute_many

pytestmark = pytest.mark.django_db


def ingest(**fields) -> Lead:
    interactions = fields.pop("interactions", ())
    return lead_ingest(data=LeadData(**fields), interactions=interactions).lead


def export(*args: str) -> list[dict[str, str]]:
    out = StringIO()
    call_command("export_leads", *args, stdout=out)
    out.seek(0)
    return list(csv.DictReader(out))


@pytest.fixture
def leads() -> dict[str, Lead]:
    mai = ingest(
        email="mai@example.com",
        phone="0912345678",
        external_id="crm-1",
        full_name="Trần Thị Mai",
        company="Sao Việt",
        job_title="Giám đốc",
        source="Zalo",
        interactions=[
            InteractionData(kind="demo_request", channel="web_form", quantity=1),
            InteractionData(kind="event_attendance", channel="event", quantity=1),
        ],
    )
    an = ingest(email="an@example.com")
    score_recompute_many(lead_ids=[mai.pk, an.pk])
    # Pinned, so the filters are tested whatever the scoring rules say.
    Lead.objects.filter(pk=mai.pk).update(level="mql", temperature="hot")
    Lead.objects.filter(pk=an.pk).update(level="iql", temperature="cold")
    return {"mai": Lead.objects.get(pk=mai.pk), "an": Lead.objects.get(pk=an.pk)}


def test_the_export_has_a_header_and_one_row_per_lead(leads):
    out = StringIO()
    call_command("export_leads", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].split(",") == list(EXPORT_COLUMNS)
    assert len(lines) == 1 + 2
    mai = leads["mai"]
    row = next(r for r in export() if r["email"] == "mai@example.com")
    assert row["external_id"] == "crm-1"
    assert row["phone"] == "+84912345678"
    assert row["full_name"] == "Trần Thị Mai"
    assert (row["company"], row["job_title"], row["source"]) == (
        "Sao Việt",
        "Giám đốc",
        "Zalo",
    )
    assert (row["level"], row["temperature"]) == (mai.level, mai.temperature)
    assert row["score"] == str(mai.score)
    assert row["engagement_score"] == str(mai.engagement_score)
    assert row["fit_score"] == str(mai.fit_score)
    assert mai.score > 0
    # In the team's time zone (Asia/Ho_Chi_Minh), as the pages show it.
    assert row["created_at"] == timezone.localtime(mai.created_at).isoformat()
    assert row["created_at"].endswith("+07:00")


def test_the_export_filters_by_level_and_temperature(leads):
    mai, an = leads["mai"], leads["an"]

    assert [r["email"] for r in export("--level", "mql")] == [mai.email]
    assert [r["email"] for r in export("--temperature", "cold")] == [an.email]
    assert export("--level", "iql", "--temperature", "hot") == []


def test_an_export_for_a_user_holds_what_that_user_may_see(
    leads, user, django_user_model
):
    gone = django_user_model.objects.create_user(username="gone", is_active=False)

    for person in (user, gone):
        exported = {r["email"] for r in export("--user", person.username)}
        visible = Lead.objects.visible_to(person).values_list("email", flat=True)
        assert exported == set(visible)
    assert export("--user", "gone") == []


def test_an_export_for_an_unknown_user_is_refused(leads):
    with pytest.raises(CommandError, match='No user named "nobody"'):
        export("--user", "nobody")


def test_a_value_a_spreadsheet_would_run_is_defused(leads):
    ingest(email="x@example.com", full_name='=HYPERLINK("http://evil")')

    row = next(r for r in export() if r["email"] == "x@example.com")

    assert row["full_name"] == '\'=HYPERLINK("http://evil")'
    assert next(r for r in export() if r["email"] == "mai@example.com")["phone"] == (
        "+84912345678"
    )


@pytest.mark.django_db
def test_the_export_can_start_with_a_byte_order_mark_for_excel(leads):
    out = io.StringIO()

    call_command("export_leads", "--bom", stdout=out)

    assert out.getvalue().startswith("\ufeffexternal_id,")
