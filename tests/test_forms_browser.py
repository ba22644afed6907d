"""A marketer builds a form; a visitor fills its embed snippet on another
site in a real browser; the lead arrives with its campaign and UTM values.

The other site is a static page served by the test from a second localhost
origin. Debian's Chromium is driven by Playwright (see test_browser.py).
"""

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from campaigns.models import Campaign, Submission, WebForm
from leads.models import Lead
from tests.test_browser import PASSWORD, screenshot_on_failure

MARKETER_PERMS = (
    "campaigns.view_campaign",
    "campaigns.add_webform",
    "campaigns.change_webform",
    "leads.view_lead",
)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def other_site(tmp_path):
    """A static web server on its own port: another origin than the CRM."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(QuietHandler, directory=str(tmp_path))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(chromium_browser):
    context = chromium_browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def build_form(page, live_server, campaign, *, origin: str, require_token: bool):
    """Log in and build the form in the builder; returns its embed snippet."""
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "marketer")
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url("**/leads/")

    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.click("text=New form")
    page.wait_for_url("**/forms/new/")
    page.fill("#id_name", "Tết ebook form")
    page.fill("#id_thank_you_message_en", "Thanks, the ebook is on its way.")
    page.fill("#id_allowed_origins", origin)
    page.fill("#id_min_fill_seconds", "1")
    if require_token:
        page.check("#id_require_render_token")
    for index, (name, required) in enumerate(
        [("full_name", False), ("email", True), ("company", False)]
    ):
        page.fill(f"#id_fields-{index}-name", name)
        page.fill(f"#id_fields-{index}-position", str(index))
        if required:
            page.check(f"#id_fields-{index}-required")
    page.click("#builder button[type=submit]")
    page.wait_for_url("**/campaigns/forms/*/")
    return page.input_value("#embed-snippet")


def publish(site, snippet: str) -> str:
    directory, origin = site
    (directory / "ebook.html").write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Our ebook</title></head><body><h1>Get the ebook</h1>{snippet}"
        "</body></html>",
        encoding="utf-8",
    )
    return f"{origin}/ebook.html"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_embedded_form_posts_from_another_site_with_the_script(
    page, live_server, other_site, make_user
):
    from playwright.sync_api import expect

    make_user("marketer", perms=MARKETER_PERMS)
    campaign = Campaign.objects.create(name="Tết ebook", utm_campaign="tet-ebook")
    _directory, origin = other_site

    with screenshot_on_failure(page, "embedded-form-with-script"):
        snippet = build_form(
            page, live_server, campaign, origin=origin, require_token=True
        )
        url = publish(other_site, snippet)
        page.goto(f"{url}?utm_source=newsletter&utm_medium=email&utm_content=hero")
        # The script fetches the time-trap token from the CRM.
        expect(page.locator("form[data-leadcrm-form] input[name=_ts]")).to_have_count(1)
        page.fill("input[name=full_name]", "Lê Văn Cường")
        page.fill("input[name=email]", "Cuong.Le@Example.vn")
        page.fill("input[name=company]", "Công ty Cường Thịnh")
        # The form's minimum is one second: a person takes longer than that.
        page.wait_for_timeout(1200)
        page.click("form[data-leadcrm-form] button[type=submit]")
        expect(page.locator(".leadcrm-thanks")).to_have_text(
            "Thanks, the ebook is on its way."
        )

    submission = Submission.objects.get()
    assert (submission.status, submission.spam_reason) == ("processed", "")
    lead = Lead.objects.get()
    assert lead.email == "cuong.le@example.vn"
    assert lead.company == "Công ty Cường Thịnh"
    assert lead.first_touch_campaign == campaign
    assert lead.last_touch_campaign == campaign
    assert lead.first_touch_utm == {
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "tet-ebook",
        "utm_content": "hero",
    }


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_embedded_form_works_without_javascript(
    chromium_browser, live_server, other_site, make_user, page
):
    make_user("marketer", perms=MARKETER_PERMS)
    campaign = Campaign.objects.create(name="Tết ebook", utm_campaign="tet-ebook")
    _directory, origin = other_site
    snippet = build_form(
        page, live_server, campaign, origin=origin, require_token=False
    )
    url = publish(other_site, snippet)

    context = chromium_browser.new_context(locale="vi-VN", java_script_enabled=False)
    visitor = context.new_page()
    try:
        with screenshot_on_failure(visitor, "embedded-form-without-script"):
            visitor.goto(url)
            visitor.fill("input[name=email]", "mai@example.vn")
            visitor.click("form button[type=submit]")
            visitor.wait_for_url(f"**/f/{WebForm.objects.get().key}/thanks/")
            assert "Thanks, the ebook is on its way." in visitor.content()
    finally:
        context.close()

    lead = Lead.objects.get()
    assert lead.first_touch_campaign == campaign
    assert lead.first_touch_utm == {"utm_campaign": "tet-ebook"}
