import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from leads.importing import (
    MAPPINGS_DIR,
    MappingError,
    lead_import_csv,
    mapping_load,
    mapping_parse,
)
from leads.models import Interaction, Lead
from scoring.services import score_recompute_many

pytestmark = pytest.mark.django_db

MAPPING = {
    "source_system": "fair-2026",
    "blank_values": ["Select"],
    "fields": {
        "email": "Email",
        "phone": "Phone",
        "full_name": "Name",
        "company": "Company",
        "city": "City",
    },
    "custom": {"booth": {"column": "Booth", "type": "number"}},
    "email_consent": {"column": "No Email", "false": ["Yes"]},
    "known_outcome": {"column": "Bought", "true": ["1"], "false": ["0"]},
    "interactions": [
        {
            "slot": "visits",
            "kind": "page_visit",
            "quantity": "Visits",
            "details": {"seconds": {"column": "Seconds", "type": "number"}},
        },
        {
            "slot": "last",
            "column": "Last",
            "kinds": {"Opened": "email_open", "Called": "sales_call"},
            "default_kind": "other",
            "value_detail": "activity",
        },
    ],
}
HEADER = "Email,Phone,Name,Company,City,Booth,No Email,Bought,Visits,Seconds,Last"


def write_csv(tmp_path: Path, lines: list[str], *, name: str = "leads.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_import(path: Path, mapping: dict | None = None, **kwargs):
    return lead_import_csv(
        path=path,
        mapping=mapping_parse(mapping or MAPPING),
        rescore=score_recompute_many,
        **kwargs,
    )


def test_a_row_becomes_a_lead_with_custom_data_flags_and_interactions(tmp_path):
    path = write_csv(
        tmp_path,
        [
            HEADER,
            "An@Example.com,0912 345 678,Trần An,VinaTech,Hà Nội,12,Yes,1,3,95,Opened",
        ],
    )

    report = run_import(path)

    assert (report.created, report.skipped) == (1, 0)
    lead = Lead.objects.get()
    assert (lead.email, lead.phone) == ("an@example.com", "+84912345678")
    assert (lead.full_name, lead.company, lead.city) == (
        "Trần An",
        "VinaTech",
        "Hà Nội",
    )
    assert lead.custom == {"booth": 12}
    assert lead.email_consent is False
    assert lead.known_outcome is True
    kinds = {
        i.kind: (i.quantity, i.details, i.channel) for i in Interaction.objects.all()
    }
    assert kinds == {
        "page_visit": (3, {"seconds": 95}, "import"),
        "email_open": (1, {"activity": "Opened"}, "import"),
    }


def test_a_semicolon_file_with_a_byte_order_mark_imports(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text(
        HEADER.replace(",", ";") + "\n" + "an@example.com;;Trần An;;;;;;;;\n",
        encoding="utf-8-sig",
    )

    report = run_import(path)

    assert report.created == 1
    assert Lead.objects.get().full_name == "Trần An"


def test_a_decimal_comma_reads_as_a_decimal_point(tmp_path):
    mapping = {**MAPPING, "custom": {"rate": {"column": "Booth", "type": "number"}}}
    path = tmp_path / "excel.csv"
    path.write_text(
        HEADER.replace(",", ";") + "\n" + "an@example.com;;;;;2,5;;;;;\n",
        encoding="utf-8",
    )

    run_import(path, mapping)

    assert Lead.objects.get().custom == {"rate": 2.5}


def test_bad_rows_are_skipped_with_their_reason_and_the_rest_imports(tmp_path):
    path = write_csv(
        tmp_path,
        [
            HEADER,
            "an@example.com,,,,,,,,,,",
            ",,Nobody,,,,,,,,",
            ",12,Bad Phone,,,,,,,,",
            "binh@example.com,,,,,,,,lots,,",
            "chi@example.com,,,,,,,,,,",
        ],
    )

    report = run_import(path)

    assert (report.created, report.skipped) == (2, 3)
    assert [(s.row, s.reason) for s in report.skipped_rows] == [
        (3, "email: Enter an email address or a phone number."),
        (4, "phone: Enter a valid phone number."),
        (5, "Visits: not a number"),
    ]
    assert set(Lead.objects.values_list("email", flat=True)) == {
        "an@example.com",
        "chi@example.com",
    }


def test_a_returning_lead_is_updated_instead_of_duplicated(tmp_path):
    first = write_csv(
        tmp_path, [HEADER, "an@example.com,,Trần An,VinaTech,,,,,,,"], name="a.csv"
    )
    second = write_csv(
        tmp_path,
        [HEADER, "AN@EXAMPLE.COM,0912345678,,Select,Huế,,,1,,,"],
        name="b.csv",
    )
    run_import(first)

    report = run_import(second)

    assert (report.created, report.updated) == (0, 1)
    lead = Lead.objects.get()
    assert (lead.company, lead.city, lead.phone) == ("VinaTech", "Huế", "+84912345678")
    assert lead.known_outcome is True


def test_importing_a_file_again_adds_no_interaction(tmp_path):
    path = write_csv(
        tmp_path,
        [
            HEADER,
            "an@example.com,,,,,,,,3,60,Called",
            ",0912345678,,,,,,,1,,Opened",
        ],
    )
    run_import(path)
    interactions = Interaction.objects.count()
    updated_at = sorted(Lead.objects.values_list("updated_at", flat=True))

    report = run_import(path)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)
    assert Interaction.objects.count() == interactions == 4
    assert sorted(Lead.objects.values_list("updated_at", flat=True)) == updated_at


def test_a_corrected_file_updates_the_leads_it_already_imported(tmp_path):
    path = write_csv(tmp_path, [HEADER, "an@example.com,,,,,,,0,2,,Opened"])
    run_import(path)
    write_csv(tmp_path, [HEADER, "an@example.com,,,,,,,1,2,,Opened"])

    report = run_import(path)

    assert report.updated == 1
    assert Lead.objects.get().known_outcome is True
    assert Interaction.objects.count() == 2


def test_no_quantity_or_no_value_records_no_interaction(tmp_path):
    path = write_csv(
        tmp_path,
        [
            HEADER,
            "an@example.com,,,,,,,,0,0,",
            "binh@example.com,,,,,,,,,,Select",
            "chi@example.com,,,,,,,,,,Webinar",
        ],
    )

    run_import(path)

    assert list(Interaction.objects.values_list("kind", "details")) == [
        ("other", {"activity": "Webinar"})
    ]


def test_imported_leads_are_scored(tmp_path):
    path = write_csv(tmp_path, [HEADER, "an@example.com,,Trần An,,,,,,5,,Called"])

    report = run_import(path)

    lead = Lead.objects.get()
    assert report.rescored == 1
    assert lead.scored_at is not None
    assert not lead.score_stale
    assert lead.engagement_score > 0


def test_a_dry_run_saves_nothing(tmp_path):
    path = write_csv(tmp_path, [HEADER, "an@example.com,,,,,,,,3,,Opened"])

    report = run_import(path, dry_run=True)

    assert report.created == 1
    assert report.rescored == 0
    assert not Lead.objects.exists()
    assert not Interaction.objects.exists()


def test_the_limit_stops_after_that_many_rows(tmp_path):
    rows = [f"lead{n}@example.com,,,,,,,,,," for n in range(5)]
    path = write_csv(tmp_path, [HEADER, *rows])

    report = run_import(path, limit=2, batch_size=1)

    assert report.created == 2
    assert Lead.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fields": {"emial": "Email"}}, 'Unknown lead field emial in "fields"'),
        (
            {"interactions": [{"slot": "a", "kind": "fax"}]},
            'Unknown interaction kind "fax"',
        ),
        (
            {"interactions": [{"slot": "a", "column": "Last", "kinds": {"X": "fax"}}]},
            'Unknown interaction kind "fax"',
        ),
        ({"interactions": [{"slot": "a"}]}, 'needs either "kind"'),
        ({"colour": "blue"}, "Unknown key colour in the mapping"),
        ({"source_system": "Fair 2026!"}, '"source_system" must be'),
        ({"fields": {"company": "Company"}}, "Map an identity"),
        ({"custom": {"x": {"column": "Booth", "type": "date"}}}, 'Unknown type "date"'),
    ],
)
def test_a_bad_mapping_is_refused_with_a_clear_error(change, message):
    with pytest.raises(MappingError, match=message):
        mapping_parse({**MAPPING, **change})


def test_a_mapping_column_missing_from_the_file_is_refused(tmp_path):
    header = HEADER.replace(",Bought", "").replace(",City", "")
    path = write_csv(tmp_path, [header, "an@example.com,,,,,,,,"])

    with pytest.raises(
        MappingError, match='missing from the CSV header: "Bought", "City".'
    ):
        run_import(path)

    assert not Lead.objects.exists()


def test_the_command_prints_a_summary_with_each_skipped_row(tmp_path):
    path = write_csv(tmp_path, [HEADER, "an@example.com,,,,,,,,,,", ",,,,,,,,,,Opened"])
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING), encoding="utf-8")
    out = StringIO()

    call_command("import_leads", str(path), "--mapping", str(mapping), stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "Row 3 skipped: email: Enter an email address or a phone number."
    )
    assert lines[1].startswith("Rows read: 2 in ")
    assert lines[1].endswith(
        "Created 1, updated 0, unchanged 0, skipped 1, "
        "with a value not imported 0. Leads rescored: 1."
    )


def test_an_invalid_email_beside_a_valid_phone_is_imported_with_a_warning(tmp_path):
    path = write_csv(
        tmp_path,
        [HEADER, "not-an-email,0912 345 678,An,,,,,,,,", "binh@example.com,,,,,,,,,,"],
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING), encoding="utf-8")
    out = StringIO()

    call_command("import_leads", str(path), "--mapping", str(mapping), stdout=out)

    lead = Lead.objects.get(phone="+84912345678")
    assert lead.email == ""
    assert lead.custom["invalid_email"] == "not-an-email"
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "Row 2: email not imported (Enter a valid email address.); "
        "kept as invalid_email"
    )
    assert "Created 2," in lines[1]
    assert "with a value not imported 1." in lines[1]


def test_an_external_id_row_reports_its_invalid_phone(tmp_path):
    mapping = {**MAPPING, "external_id": "Name"}
    path = write_csv(tmp_path, [HEADER, ",12,P-1,,,,,,,,"])

    report = run_import(path, mapping)

    assert (report.created, report.skipped, report.warned) == (1, 0, 1)
    assert report.warned_rows[0].row == 2
    assert report.warned_rows[0].reason.startswith("phone not imported (")
    assert Lead.objects.get(external_id="P-1").custom["invalid_phone"] == "12"


def test_the_command_fails_on_a_bad_mapping_file(tmp_path):
    path = write_csv(tmp_path, [HEADER])
    mapping = tmp_path / "mapping.json"
    mapping.write_text('{"source_system": "x", "fields": {"emial": "Email"}}')

    with pytest.raises(CommandError, match="Unknown lead field emial"):
        call_command("import_leads", str(path), "--mapping", str(mapping))


def test_the_command_fails_on_a_missing_file(tmp_path):
    mapping = MAPPINGS_DIR / "x-education.json"

    with pytest.raises(CommandError, match="Cannot read the CSV file"):
        call_command(
            "import_leads", str(tmp_path / "nope.csv"), "--mapping", str(mapping)
        )


def test_the_shipped_x_education_mapping_is_valid():
    mapping = mapping_load(MAPPINGS_DIR / "x-education.json")

    assert mapping.source_system == "x-education"
    assert mapping.external_id == "Prospect ID"
    assert [item.slot for item in mapping.interactions] == ["visits", "last_activity"]


def test_a_row_skipped_for_two_fields_names_both_in_one_sentence_each(tmp_path):
    path = write_csv(tmp_path, [HEADER, "an@,12,,,,,,,,,"])

    report = run_import(path)

    assert [s.reason for s in report.skipped_rows] == [
        "email: Enter a valid email address. phone: Enter a valid phone number."
    ]
