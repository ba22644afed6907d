"""The Vietnamese translation: key pages read in Vietnamese, and the
catalogue is complete and compiled."""

import ast
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from leads.services import InteractionData

LOCALE_DIR = Path(settings.BASE_DIR) / "locale" / "vi" / "LC_MESSAGES"
PO_FILE = LOCALE_DIR / "django.po"
MO_FILE = LOCALE_DIR / "django.mo"

VI = {"HTTP_ACCEPT_LANGUAGE": "vi"}


@pytest.fixture(autouse=True)
def _english_afterwards():
    """LocaleMiddleware leaves the language of the last request active in
    this thread; the tests after these ones expect English."""
    yield
    translation.deactivate()


def _po_entries(text: str) -> list[dict[str, str]]:
    """Each entry of a .po file as {"msgid": ..., "msgstr": ...}, with the
    keyword ("msgid", "msgid_plural", "msgstr", "msgstr[0]"...) as the key."""
    entries = []
    for block in re.split(r"\n\s*\n", text.strip()):
        entry: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line.startswith("#"):
                continue
            match = re.match(
                r"(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (.*)", line
            )
            if match:
                key, line = match.group(1), match.group(2)
                entry[key] = ""
            if key is not None and line.startswith('"'):
                entry[key] += ast.literal_eval(line)
        if entry:
            entries.append(entry)
    return entries


def test_every_msgid_has_a_vietnamese_msgstr():
    text = PO_FILE.read_text(encoding="utf-8")
    entries = _po_entries(text)
    header, messages = entries[0], entries[1:]

    assert header["msgid"] == ""
    assert "Language: vi\\n" in text or "Language: vi\n" in header["msgstr"]
    assert "charset=UTF-8" in header["msgstr"]
    assert "nplurals=1; plural=0;" in header["msgstr"]
    assert len(messages) > 500
    untranslated = [
        entry["msgid"]
        for entry in messages
        if not any(
            value.strip() for key, value in entry.items() if key.startswith("msgstr")
        )
    ]
    assert untranslated == []
    assert "#, fuzzy" not in text


@pytest.mark.gettext
def test_the_catalogue_holds_every_message_of_the_source(tmp_path):
    """makemessages on a copy of the source adds no message the catalogue
    lacks: text added without its Vietnamese would show in English."""
    import shutil
    import subprocess
    import sys

    base = Path(settings.BASE_DIR)
    copy = tmp_path / "src"
    shutil.copytree(
        base,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "bench", "node_modules", "__pycache__", "*.sqlite3"
        ),
    )
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "vi", "-v", "0"],
        cwd=copy,
        check=True,
        capture_output=True,
    )

    ours = {entry["msgid"] for entry in _po_entries(PO_FILE.read_text("utf-8"))}
    made = _po_entries((copy / PO_FILE.relative_to(base)).read_text("utf-8"))
    assert [e["msgid"] for e in made if e["msgid"] not in ours] == []


def test_the_placeholders_of_every_translation_match_the_original():
    placeholder = re.compile(r"%\(\w+\)[-.\d]*[sdf]|<[^>]+>")
    for entry in _po_entries(PO_FILE.read_text(encoding="utf-8"))[1:]:
        wanted = set(placeholder.findall(entry["msgid"]))
        wanted |= set(placeholder.findall(entry.get("msgid_plural", "")))
        got = set(placeholder.findall(entry.get("msgstr") or entry["msgstr[0]"]))
        assert got == wanted, entry["msgid"]


def test_the_compiled_catalogue_holds_every_translation_of_its_source():
    import gettext

    with MO_FILE.open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)

    for entry in _po_entries(PO_FILE.read_text(encoding="utf-8"))[1:]:
        if "msgid_plural" in entry:
            got = compiled.ngettext(entry["msgid"], entry["msgid_plural"], 1)
            assert got == entry["msgstr[0]"], entry["msgid"]
        elif "msgctxt" in entry:
            got = compiled.pgettext(entry["msgctxt"], entry["msgid"])
            assert got == entry["msgstr"], entry["msgid"]
        else:
            assert compiled.gettext(entry["msgid"]) == entry["msgstr"], entry["msgid"]


@pytest.mark.django_db
def test_the_login_page_reads_in_vietnamese(client):
    page = client.get(reverse("login"), **VI).content.decode()

    assert 'lang="vi"' in page
    assert "Đăng nhập vào LeadCRM" in page
    assert "Log in to LeadCRM" not in page


@pytest.mark.django_db
def test_the_language_cookie_switches_the_lead_list_to_vietnamese(
    client, user, make_lead
):
    make_lead(full_name="Nguyễn Văn An", email="an@example.vn", score=True)
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "vi"

    page = client.get(reverse("leads:list")).content.decode()

    assert '<th scope="col">Nhiệt độ</th>' in page
    assert '<th scope="col">Cấp độ</th>' in page
    assert "Temperature" not in page
    assert "Nguyễn Văn An" in page
    assert "Áp dụng" in page


@pytest.mark.django_db
def test_the_lead_list_stays_english_by_default(client, user, make_lead):
    make_lead(full_name="An", email="an@example.vn", score=True)
    client.force_login(user)

    page = client.get(reverse("leads:list")).content.decode()

    assert '<th scope="col">Temperature</th>' in page
    assert "Nhiệt độ" not in page


@pytest.mark.django_db
def test_the_lead_page_reads_in_vietnamese(client, user, make_lead):
    from django.utils import timezone

    lead = make_lead(
        full_name="Trần Thị Bình",
        email="binh@example.vn",
        interactions=[
            InteractionData(
                kind="demo_request", channel="web_form", occurred_at=timezone.now()
            )
        ],
        score=True,
    )
    client.force_login(user)

    page = client.get(lead.get_absolute_url(), **VI).content.decode()

    for words in ("Hồ sơ", "Lịch sử cấp độ", "Yêu cầu demo", "Mức tương tác"):
        assert words in page
    assert "Level history" not in page


@pytest.mark.django_db
def test_the_scoring_page_reads_in_vietnamese(client, make_user):
    client.force_login(make_user("analyst", perms=["scoring.change_ruleset"]))

    page = client.get(reverse("scoring:overview"), **VI).content.decode()

    assert "Quy tắc đang áp dụng" in page
    assert "Tác vụ tính lại điểm" in page
    assert "Rules in force" not in page
    # The default rules' fit lines, by the field's name on the lead's form.
    assert "Họ và tên có giá trị" in page
    assert "full_name" not in page


@pytest.mark.django_db
def test_capture_errors_answer_in_the_visitors_language(client, web_form):
    response = client.post(
        "/f/ebook/",
        json.dumps({"email": "an@"}),
        content_type="application/json",
        **VI,
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["email"] == ["Vui lòng nhập địa chỉ email hợp lệ."]
    assert errors["phone"] == ["Vui lòng nhập địa chỉ email hoặc số điện thoại."]


@pytest.mark.django_db
def test_the_thanks_page_reads_in_vietnamese(client, demo_web_form):
    page = client.get("/f/demo/thanks/", **VI).content.decode()

    assert "Cảm ơn bạn!" in page
    assert "Thank you" not in page


@pytest.mark.django_db
def test_a_vnd_amount_is_grouped_the_vietnamese_way(client, make_user):
    client.force_login(make_user("analyst", perms=["scoring.change_ruleset"]))

    english = client.get(reverse("scoring:overview")).content.decode()
    vietnamese = client.get(reverse("scoring:overview"), **VI).content.decode()

    assert "50,000,000 VND" in english
    assert "50.000.000 VND" in vietnamese


def test_rates_and_hours_are_rounded_not_cut():
    from dashboard.templatetags.dashboard_tags import hours, percent

    assert percent(21 / 45) == "46.7 %"
    assert hours(1.96) == "2.0 h"
    with translation.override("vi"):
        assert percent(21 / 45) == "46,7 %"


@pytest.mark.django_db
def test_a_lead_scored_a_moment_ago_says_so_in_either_language(client, user, make_lead):
    lead = make_lead(email="an@example.com", score=True)
    client.force_login(user)

    english = client.get(lead.get_absolute_url()).content.decode()
    vietnamese = client.get(lead.get_absolute_url(), **VI).content.decode()

    assert "0 minutes ago" not in english
    assert re.search(r"(now|seconds? ago)", english)
    assert "0 phút" not in vietnamese


def _score_card(page: str) -> str:
    return page[page.index('id="score"') :].split("</section>")[0]


def _vi(msgid: str, **values) -> str:
    with translation.override("vi"):
        return translation.gettext(msgid) % values


@pytest.mark.django_db
def test_the_score_breakdown_reads_in_vietnamese(client, user, make_lead):
    from django.utils import timezone

    now = timezone.now()
    lead = make_lead(
        full_name="Trần Thị Bình",
        email="binh@example.vn",
        # A decision maker's title states authority: a BANT line "stated".
        job_title="Trưởng phòng kinh doanh",
        interactions=[
            InteractionData(
                kind="form_submit",
                channel="web_form",
                # One half-life ago: the line says it faded from 10.
                occurred_at=now - timedelta(days=90),
            ),
            InteractionData(kind="email_open", channel="email", occurred_at=now),
            InteractionData(kind="page_visit", channel="web", occurred_at=now),
        ],
        score=True,
    )
    client.force_login(user)

    card = _score_card(client.get(lead.get_absolute_url(), **VI).content.decode())

    # Stored as before, in English and without codes: the API is unchanged.
    assert "Form submitted" in {line["label"] for line in lead.score_breakdown}
    assert not any("code" in line for line in lead.score_breakdown)
    for words in (
        "Gửi biểu mẫu",
        "Mở email",
        "Truy cập trang",
        "Họ và tên có giá trị",
        "Chức danh có giá trị",
        "Lead tự khai",
        "1 × 10, " + _vi("cap %(points)s", points=20),
        _vi("faded from %(points)s", points=10),
    ):
        assert words in card
    for english in (
        "Form submitted",
        "Email opened",
        "Page visit",
        "full_name",
        "job_title",
        "is filled",
        "cap 20",
        "faded from",
        "stated",
    ):
        assert english not in card


@pytest.mark.django_db
def test_breakdown_lines_it_cannot_put_in_words_keep_their_stored_words(
    client, user, make_lead
):
    from leads.models import Lead
    from scoring.models import RuleSet

    lead = make_lead(email="an@example.vn")
    Lead.objects.filter(pk=lead.pk).update(
        score=28,
        score_version=RuleSet.objects.active().pk,
        score_breakdown=[
            # A rule its version does not have (a line edited by hand).
            {
                "part": "engagement",
                "rule": "eng:999999",
                "points": 10,
                "detail": "1 × 10, cap 20",
                "label": "Form submitted",
            },
            {
                "part": "engagement",
                "rule": "chat:zalo",
                "points": 3,
                "detail": "by hand",
                "label": "",
            },
            # The rules installed before any rule set: built-in rule codes.
            {"part": "fit", "rule": "profile:company", "points": 10},
            {"part": "bant", "rule": "bant:need", "points": 5, "detail": "stated"},
        ],
    )
    client.force_login(user)

    response = client.get(lead.get_absolute_url(), **VI)

    assert response.status_code == 200
    card = _score_card(response.content.decode())
    assert "Form submitted" in card
    assert "1 × 10, " + _vi("cap %(points)s", points=20) in card
    assert "chat:zalo" in card and "by hand" in card
    assert "Hồ sơ có công ty" in card
    assert "Lead tự khai" in card


@pytest.mark.django_db
def test_a_marketers_own_rule_label_is_shown_as_written(client, user, make_lead):
    from scoring.models import EngagementRule
    from scoring.rulesets import rule_set_activate, rule_set_draft

    draft = rule_set_draft(name="Labelled")
    EngagementRule.objects.filter(rule_set=draft, kind="page_visit").update(
        label="Pricing page visits"
    )
    rule_set_activate(rule_set=draft)
    lead = make_lead(
        email="an@example.vn",
        interactions=[InteractionData(kind="page_visit", channel="web")],
        score=True,
    )
    client.force_login(user)

    card = _score_card(client.get(lead.get_absolute_url(), **VI).content.decode())

    assert lead.score_version == draft.pk
    assert "Pricing page visits" in card
    assert "Truy cập trang" not in card


@pytest.mark.parametrize(
    ("rule", "quantity", "decayed"),
    [
        (dict(kind="page_visit", points=2.5), 3, 3.0),
        (dict(kind="form_submit", points=10, cap=20), 1, 1.0),
        (dict(kind="form_submit", points=10, cap=20), 4, 1.0),
        (dict(kind="unsubscribe", points=-20, cap=20), 1, 0.5),
        (dict(kind="demo_request", points=0.5, cap=1.5), 4, 1.0),
    ],
)
def test_every_detail_the_engine_writes_reads_in_either_language(
    rule, quantity, decayed
):
    from leads.templatetags.leads_tags import score_detail_label
    from scoring import engine

    rules = engine.Rules(
        version=0, engagement=(engine.EngagementRule(key="r", **rule),), fit=()
    )
    activity = [engine.Activity(rule["kind"], quantity, decayed, decayed)]
    _points, _recent, (line,) = engine.score_engagement(activity, rules)
    stored = {"part": line.part, "detail": line.detail}

    with translation.override("en"):
        english = score_detail_label(stored)
    with translation.override("vi"):
        vietnamese = score_detail_label(stored)

    assert english == line.detail
    assert vietnamese.startswith(f"{quantity} × ")
    for words in ("cap", "faded", "."):
        assert words not in vietnamese
