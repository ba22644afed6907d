import pytest

from tests import services

SERVICE_MARKERS = ("postgres", "redis", "worker", "browser", "sample_data")


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
def _eager_celery(settings):
    """Unit tests run tasks in-process; worker tests opt out explicitly."""
    from leadcrm.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(
        username="marketer", password="a-long-test-password", is_staff=False
    )


@pytest.fixture
def web_form(db):
    from campaigns.models import Campaign, WebForm

    campaign = Campaign.objects.create(name="Ebook: Lead scoring", kind="ebook")
    return WebForm.objects.create(campaign=campaign, name="Ebook form", key="ebook")
