"""The Vietnamese translation: key pages read in Vietnamese, and the
catalogue is complete and compiled."""

import ast
import json
import re
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
