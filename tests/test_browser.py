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
    page, live_server, demo_web_form, django_user_model, make_lead
):
    # Imported here so that a missing Playwright skips (or fails in CI) the
    # test through its marker instead of breaking collection.
    from playwright.sync_api import expect

    django_user_model.objects.create_user(username="marketer", password=PASSWORD)
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
