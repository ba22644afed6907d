import pytest

from tests import services

SERVICE_MARKERS = ("postgres", "redis", "worker", "browser", "sample_data", "gettext")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in SERVICE_MARKERS:
        if item.get_closest_marker(marker) is None:
            continue
        reason = services.missing(marker)
        if reason is None:
            continue
        if services.services_required():
            pytest.fail(f"{item.nodeid} {reason}, and services are required here")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _english():
    """Each test starts in English: a request in Vietnamese leaves its
    language active in the thread after the response."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    """Unit tests run tasks in-process; worker tests opt out explicitly."""
    from leadcrm.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield


@pytest.fixture
def user(django_user_model):
    """A marketer: sees every lead and adds leads (groups vanish in the flush between
    transactional tests, so the permissions are given directly)."""
    from django.contrib.auth.models import Permission

    marketer = django_user_model.objects.create_user(
        username="marketer", password="a-long-test-password", is_staff=False
    )
    marketer.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="leads",
            codename__in=["view_lead", "add_lead", "view_all_leads"],
        )
    )
    return marketer


@pytest.fixture
def web_form(db):
    from campaigns.models import Campaign, WebForm

    campaign = Campaign.objects.create(name="Ebook: Lead scoring", kind="ebook")
    return WebForm.objects.create(campaign=campaign, name="Ebook form", key="ebook")


@pytest.fixture
def make_lead(db):
    """Create a lead the way every channel does: through `lead_ingest`.

    Keyword arguments are LeadData fields; `interactions` takes
    InteractionData. With `score=True` the lead is scored before it is
    returned, as the worker would after the ingest commits.
    """
    from leads.services import LeadData, lead_ingest
    from scoring.services import score_recompute

    def make(*, interactions=(), score=False, **fields):
        result = lead_ingest(
            data=LeadData(**fields), interactions=interactions, announce=False
        )
        if score:
            return score_recompute(lead_id=result.lead.pk)
        return result.lead

    return make


@pytest.fixture
def demo_web_form(db):
    """The form the demo page posts to (key "demo"), as `make run` seeds it."""
    from campaigns.models import Campaign, WebForm

    campaign = Campaign.objects.create(
        name="VN growth 2026", kind="ebook", utm_campaign="vn-growth-2026"
    )
    return WebForm.objects.create(campaign=campaign, name="Demo form", key="demo")


@pytest.fixture(scope="session")
def chromium_browser():
    """One headless Chromium for the whole run, shared by browser tests.

    Playwright's sync API keeps an event loop in this thread, and Django
    refuses ORM calls from a thread with a running loop unless told it is
    safe, which it is here: nothing else runs in this thread meanwhile.
    """
    import os

    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=services.chromium_path(),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def make_user(django_user_model):
    """A signed-up person in a role (a group the migrations create) and/or
    with single permissions ("leads.move_lead").

    Transactional tests flush the migrations' groups away: they pass
    `perms` instead of `role`.
    """
    from django.contrib.auth.models import Group, Permission

    def make(username, *, role=None, perms=()):
        user = django_user_model.objects.create_user(
            username=username, password="a-long-test-password"
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )
        # A fresh instance: permissions are cached on the user object.
        return django_user_model.objects.get(pk=user.pk)

    return make


@pytest.fixture
def sent_slices(monkeypatch, settings):
    """Slice tasks as a broker would take them: recorded, not run; a test
    runs each as a worker would. Returns the ids sent, in order."""
    from scoring import rulesets
    from scoring.tasks import run_rescore_slice

    settings.LEADCRM = {
        **settings.LEADCRM,
        "RESCORE_SLICE_SPAN": 2,
        "RESCORE_PARALLEL": 2,
    }
    sent: list[int] = []

    def send(slice_id: int) -> bool:
        sent.append(slice_id)
        return True

    monkeypatch.setattr(rulesets, "_enqueue_slice", send)
    monkeypatch.setitem(run_rescore_slice.app.conf, "task_always_eager", False)
    return sent
