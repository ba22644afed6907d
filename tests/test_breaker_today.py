"""A tester's attacks on the day's changes: the import's warnings, the
capture error page, the periodic jobs command."""

import json
from io import StringIO

import pytest
from celery import shared_task
from django.core.management import CommandError, call_command

from campaigns.models import FormField
from leads.importing import lead_import_csv, mapping_parse
from leads.models import Lead

pytestmark = pytest.mark.django_db

IMPORT_MAPPING = {
    "source_system": "fair-2026",
    "external_id": "Id",
    "fields": {"email": "Email", "phone": "Phone"},
}


def _import(tmp_path, lines, **kwargs):
    path = tmp_path / "leads.csv"
    path.write_text("\n".join(["Email,Phone,Id", *lines]) + "\n", encoding="utf-8")
    return lead_import_csv(path=path, mapping=mapping_parse(IMPORT_MAPPING), **kwargs)


# Import: "with a value not imported" counts rows


def test_a_row_with_both_values_set_aside_counts_as_one_row(tmp_path):
    report = _import(tmp_path, ["not-an-email,12,P-1"])

    lead = Lead.objects.get(external_id="P-1")
    assert lead.custom == {"invalid_email": "not-an-email", "invalid_phone": "12"}
    # One row read, one row with values not imported: not two.
    assert (report.rows, report.created, report.warned) == (1, 1, 1)
    (warning,) = report.warned_rows
    assert warning.row == 2
    assert "email not imported (Enter a valid email address.)" in warning.reason
    assert "phone not imported (Enter a valid phone number.)" in warning.reason


def test_the_summary_never_counts_more_warned_rows_than_rows_read(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("Email,Phone,Id\nbad,12,P-1\n", encoding="utf-8")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(IMPORT_MAPPING), encoding="utf-8")
    out = StringIO()

    call_command("import_leads", str(path), "--mapping", str(mapping), stdout=out)

    summary = out.getvalue().splitlines()[-1]
    assert summary.startswith("Rows read: 1 in ")
    assert "with a value not imported 1." in summary


# Capture: the error page names each field


@pytest.mark.django_db(transaction=True)
def test_two_missing_required_fields_are_each_named_on_the_error_page(client, web_form):
    FormField.objects.create(
        form=web_form, name="company", required=True, label_en="Company"
    )
    FormField.objects.create(
        form=web_form, name="licence_plate", required=True, label_en="Licence plate"
    )

    response = client.post("/f/ebook/", {"email": "an@example.com"})

    assert response.status_code == 400
    page = response.content.decode()
    # Both fields are missing: the person must learn which, not just that
    # "This field is required." once with no field named.
    assert "<strong>Company, Licence plate</strong>: This field is required." in page
    assert page.count("This field is required.") == 1


@pytest.mark.django_db(transaction=True)
def test_the_json_error_contract_is_unchanged_for_missing_required_fields(
    client, web_form
):
    FormField.objects.create(form=web_form, name="company", required=True)
    FormField.objects.create(form=web_form, name="licence_plate", required=True)

    response = client.post(
        "/f/ebook/",
        json.dumps({"email": "an@example.com"}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "errors": {
            "company": ["This field is required."],
            "licence_plate": ["This field is required."],
        }
    }


@pytest.mark.django_db(transaction=True)
def test_a_label_with_markup_is_escaped_and_vietnamese_labels_are_used(
    client, web_form
):
    FormField.objects.create(
        form=web_form,
        name="plate",
        required=True,
        label_en="<b>Plate</b>",
        label_vi="Biển số <i>xe</i>",
    )

    english = client.post("/f/ebook/", {"email": "an@example.com"}).content.decode()
    vietnamese = client.post(
        "/f/ebook/", {"email": "an@example.com"}, HTTP_ACCEPT_LANGUAGE="vi"
    ).content.decode()

    assert "<strong>&lt;b&gt;Plate&lt;/b&gt;</strong>:" in english
    assert "<b>Plate" not in english
    assert "<strong>Biển số &lt;i&gt;xe&lt;/i&gt;</strong>:" in vietnamese


# run_periodic_jobs

RAN = []


@shared_task
def failing_job():
    raise RuntimeError("the job broke")


@shared_task
def recording_job(*args, **kwargs):
    RAN.append((args, kwargs))
    return "recorded"


def _schedule(settings, **entries):
    settings.CELERY_BEAT_SCHEDULE = {
        name: {"schedule": 60.0, **entry} for name, entry in entries.items()
    }
    RAN.clear()


def test_a_failing_job_does_not_stop_the_others_and_the_command_fails(settings):
    _schedule(
        settings,
        **{
            "broken": {"task": "tests.test_breaker_today.failing_job"},
            "after": {"task": "tests.test_breaker_today.recording_job"},
        },
    )
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="broken"):
        call_command("run_periodic_jobs", stdout=out, stderr=err)

    assert RAN == [((), {})]
    assert "broken failed: the job broke" in err.getvalue()
    assert "after: recorded" in out.getvalue()


def test_a_job_gets_the_args_and_kwargs_of_its_schedule_entry(settings):
    _schedule(
        settings,
        job={
            "task": "tests.test_breaker_today.recording_job",
            "args": (1,),
            "kwargs": {"limit": 5},
        },
    )

    call_command("run_periodic_jobs", "job", stdout=StringIO())

    assert RAN == [((1,), {"limit": 5})]
