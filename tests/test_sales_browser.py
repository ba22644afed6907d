"""A rep works leads in a real browser: accepts an MQL from the inbox,
qualifies it with BANT and sees it become an SQL without a page load, finds
it in the SQL queue, converts it and finds the deal on the pipeline.

Debian's Chromium driven by Playwright against the live server, as in
tests/test_browser.py.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.sales_helpers import mql_lead
from tests.test_browser import PASSWORD, screenshot_on_failure

REP_PERMS = (
    "leads.view_lead",
    "leads.move_lead",
    "leads.view_bant",
    "leads.change_bant",
    "leads.view_activity",
    "leads.add_activity",
    "leads.change_activity",
    "leads.view_opportunity",
    "leads.add_opportunity",
    "leads.change_opportunity",
    "leads.view_opportunity_amount",
)


@pytest.fixture
def page(chromium_browser):
    context = chromium_browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_rep_qualifies_an_mql_converts_it_and_finds_it_on_the_pipeline(
    page, live_server, make_user, make_lead
):
    from playwright.sync_api import expect

    from leads.models import Opportunity

    rep = make_user("rep", perms=REP_PERMS)
    lead = mql_lead(make_lead, owner=rep)
    soon = timezone.localdate() + timedelta(days=30)

    with screenshot_on_failure(page, "bant-to-pipeline"):
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "rep")
        page.fill("input[name=password]", PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_url("**/leads/")

        page.goto(f"{live_server.url}{lead.get_absolute_url()}")
        expect(page.locator("#lead-level")).to_have_text("MQL")
        expect(page.locator("#convert-link")).to_have_count(0)

        for criterion, fields, label in (
            (
                "budget",
                {
                    "#id_bant-budget-amount": "150000000",
                    "#id_bant-budget-currency": "VND",
                },
                "Budget",
            ),
            ("need", {"#id_bant-need-need": "One pipeline for three branches"}, "Need"),
            ("timeline", {"#id_bant-timeline-date": soon.isoformat()}, "Timeline"),
        ):
            page.click(f"button[data-bs-target='#bant-{criterion}-panel']")
            for selector, value in fields.items():
                page.fill(selector, value)
            page.click(f"#bant-{criterion}-panel button[type=submit]")
            expect(page.locator("#bant")).to_contain_text(f"{label} confirmed.")

        # htmx swapped the card and, out of band, the level, the score, the
        # level history and the offer.
        expect(page.locator("#lead-level")).to_have_text("SQL")
        expect(page.locator("#score")).to_contain_text("Timeline")
        expect(page.locator("#level-history")).to_contain_text(
            "BANT confirmed by sales"
        )
        page.click("#convert-link")
        page.wait_for_url("**/convert/")
        page.fill("#id_name", "Sao Mai rollout")
        expect(page.locator("#id_amount")).to_have_value("150000000.00")
        page.fill("#id_expected_close_on", soon.isoformat())
        page.click("#convert-form button[type=submit]")
        page.wait_for_url("**/opportunities/*/")
        expect(page.locator("h1")).to_have_text("Sao Mai rollout")

        page.click("nav >> text=Pipeline")
        page.wait_for_url("**/opportunities/pipeline/")
        column = page.locator("#stage-qualification")
        expect(column).to_contain_text("Sao Mai rollout")
        expect(column).to_contain_text("150,000,000 VND")

        # Moving the card swaps the board in place.
        card = page.locator("article", has_text="Sao Mai rollout")
        card.locator("select[name=to_stage]").select_option("proposal")
        card.locator("button[type=submit]").click()
        expect(page.locator("#stage-proposal")).to_contain_text("Sao Mai rollout")

    opportunity = Opportunity.objects.get()
    assert (opportunity.lead_id, opportunity.stage) == (lead.pk, "proposal")
    assert opportunity.currency == "VND"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_rep_accepts_an_mql_from_the_inbox_qualifies_and_converts_it(
    page, live_server, make_user, make_lead
):
    from playwright.sync_api import expect

    from leads.models import Lead, Notification, Opportunity, Team, TeamMember

    rep = make_user("rep", perms=(*REP_PERMS, "leads.work_inbox"))
    rep.email = "rep@example.vn"
    rep.save(update_fields=["email"])
    TeamMember.objects.create(team=Team.objects.create(name="Hà Nội"), user=rep)
    # Scoring makes it an MQL; the hand-off (in-process here) gives it to
    # the team's only rep.
    lead = mql_lead(make_lead, email="hoa@saoviet.vn", name="Phạm Thị Hoa")
    lead.refresh_from_db()
    assert lead.owner == rep
    assert Notification.objects.filter(user=rep, lead=lead).count() == 1
    soon = timezone.localdate() + timedelta(days=30)

    with screenshot_on_failure(page, "inbox-to-convert"):
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "rep")
        page.fill("input[name=password]", PASSWORD)
        page.click("main form button[type=submit]")
        # A rep starts in their MQL inbox.
        page.wait_for_url("**/sales/inbox/")
        expect(page.locator("nav a.active")).to_have_text("MQL inbox")
        row = page.locator(f"#inbox tr[data-lead='{lead.pk}']")
        expect(row).to_contain_text("Phạm Thị Hoa")
        row.get_by_role("button", name="Accept").click()
        expect(page.locator("main")).to_contain_text("Accepted Phạm Thị Hoa.")
        expect(page.locator("#inbox")).to_have_count(0)

        # Accepted, it waits in the queue (still an MQL) until qualified.
        page.click("nav >> text=SQL queue")
        page.wait_for_url("**/sales/queue/")
        row = page.locator(f"#queue tr[data-lead='{lead.pk}']")
        expect(row).to_contain_text("MQL")
        row.get_by_role("link", name="Phạm Thị Hoa").click()
        page.wait_for_url(f"**{lead.get_absolute_url()}")
        expect(page.locator("#lead-level")).to_have_text("MQL")

        for criterion, fields, label in (
            (
                "budget",
                {
                    "#id_bant-budget-amount": "90000000",
                    "#id_bant-budget-currency": "VND",
                },
                "Budget",
            ),
            ("need", {"#id_bant-need-need": "Zalo leads in one place"}, "Need"),
            ("timeline", {"#id_bant-timeline-date": soon.isoformat()}, "Timeline"),
        ):
            page.click(f"button[data-bs-target='#bant-{criterion}-panel']")
            for selector, value in fields.items():
                page.fill(selector, value)
            page.click(f"#bant-{criterion}-panel button[type=submit]")
            expect(page.locator("#bant")).to_contain_text(f"{label} confirmed.")
        expect(page.locator("#lead-level")).to_have_text("SQL")

        page.click("nav >> text=SQL queue")
        page.wait_for_url("**/sales/queue/")
        row = page.locator(f"#queue tr[data-lead='{lead.pk}']")
        expect(row).to_contain_text("SQL")
        row.get_by_role("link", name="Phạm Thị Hoa").click()
        page.wait_for_url(f"**{lead.get_absolute_url()}")

        page.click("#convert-link")
        page.wait_for_url("**/convert/")
        page.fill("#id_name", "Sao Việt: Zalo leads")
        expect(page.locator("#id_amount")).to_have_value("90000000.00")
        page.fill("#id_expected_close_on", soon.isoformat())
        page.click("#convert-form button[type=submit]")
        page.wait_for_url("**/opportunities/*/")
        expect(page.locator("h1")).to_have_text("Sao Việt: Zalo leads")

        # Converted, it has left the queue.
        page.click("nav >> text=SQL queue")
        page.wait_for_url("**/sales/queue/")
        expect(page.locator("#queue")).to_have_count(0)

    lead = Lead.objects.get(pk=lead.pk)
    assert lead.accepted_at is not None and lead.time_to_accept is not None
    assert lead.level == "sql"
    opportunity = Opportunity.objects.get()
    assert (opportunity.lead_id, opportunity.owner, opportunity.amount) == (
        lead.pk,
        rep,
        90_000_000,
    )
