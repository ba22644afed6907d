"""A person fills the demo form in a real browser; a marketer finds the lead.

Runs against the live server (static files included) with Debian's
Chromium driven by Playwright. The `chromium_browser` fixture lets Django
make ORM calls beside Playwright's event loop (DJANGO_ALLOW_ASYNC_UNSAFE).
"""

from contextlib import contextmanager
from pathlib import Path

import pytest

SCREENSHOT_DIR = Path("/tmp")
PASSWORD = "a-long-test-password"


@pytest.fixture
def page(chromium_browser):
    context = chromium_browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@contextmanager
def screenshot_on_failure(page, name: str):
    try:
        yield
    except Exception:
        path = SCREENSHOT_DIR / f"leadcrm-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        raise


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_demo_form_post_becomes_a_lead_a_marketer_can_find(
    page, live_server, demo_web_form, make_user, make_lead
):
    # Imported here so that a missing Playwright skips (or fails in CI) the
    # test through its marker instead of breaking collection.
    from playwright.sync_api import expect

    make_user("marketer", perms=("leads.view_lead", "leads.view_all_leads"))
    make_lead(email="binh@example.com", full_name="Trần Văn Bình")

    with screenshot_on_failure(page, "demo-form-to-lead"):
        page.goto(f"{live_server.url}/static/demo/form.html")
        page.fill("#full_name", "Nguyễn Thị Mai")
        page.fill("#email", "Mai.Nguyen@Example.com")
        page.fill("#phone", "0912 345 678")
        page.fill("#company", "Công ty Sao Mai")
        # The honeypot is there for bots but off-screen for people.
        honeypot = page.locator("#website").bounding_box()
        assert honeypot["x"] + honeypot["width"] <= 0
        with page.expect_response(
            lambda r: r.url.endswith("/f/demo/") and r.request.method == "POST"
        ) as posted:
            page.click("button[type=submit]")
        assert posted.value.status == 303
        page.wait_for_url("**/f/demo/thanks/")
        assert "Thank you" in page.text_content("h1")

        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "marketer")
        page.fill("input[name=password]", PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_url("**/leads/")

        page.fill("input[name=q]", "nguyen thi mai")
        page.press("input[name=q]", "Enter")
        page.wait_for_url(lambda url: "q=nguyen" in url)
        table = page.locator("#lead-table")
        expect(table).not_to_contain_text("Trần Văn Bình")
        expect(table).to_contain_text("Nguyễn Thị Mai")
        page.click("text=Nguyễn Thị Mai")
        page.wait_for_url("**/leads/*/")

        assert "Nguyễn Thị Mai" in page.text_content("h1")
        profile = page.locator("section", has=page.locator("#profile-heading"))
        profile = profile.inner_text()
        assert "+84912345678" in profile
        assert "mai.nguyen@example.com" in profile
        assert "vn-growth-2026" in page.content()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_marketer_drafts_previews_and_activates_new_rules(
    page, live_server, make_user, make_lead
):
    from playwright.sync_api import expect

    from leads.models import Lead
    from leads.services import InteractionData
    from scoring.models import RuleSet

    make_user(
        "marketer",
        perms=("scoring.change_ruleset", "leads.view_lead", "leads.view_all_leads"),
    )
    for number in range(4):
        make_lead(
            email=f"lead{number}@example.com",
            company="Acme" if number % 2 else "",
            known_outcome=bool(number % 2),
            interactions=[InteractionData(kind="demo_request", channel="web_form")],
            score=True,
        )

    with screenshot_on_failure(page, "scoring-draft-to-activation"):
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "marketer")
        page.fill("input[name=password]", PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_url("**/leads/")

        page.click("nav >> text=Scoring")
        page.wait_for_url("**/scoring/")
        expect(page.locator("h1")).to_have_text("Scoring")
        page.click("text=Edit rules")
        page.wait_for_url("**/scoring/draft/*/")

        page.fill("#id_mql_total", "60")
        page.click("button[value=preview]")
        page.wait_for_url("**/scoring/draft/*/preview/")
        expect(page.locator("#preview-coverage")).to_contain_text("all 4 leads")
        expect(page.locator("#draft-auc")).to_contain_text("1.000")

        # The activation asks for confirmation first.
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("text=Activate and rescore")
        page.wait_for_url("**/scoring/")
        expect(page.locator(".alert-success")).to_contain_text("are in force")
        expect(page.locator("#rescore-jobs")).to_contain_text("Done")

    rule_set = RuleSet.objects.active()
    assert rule_set.mql_total == 60
    assert set(Lead.objects.values_list("score_version", flat=True)) == {rule_set.pk}
