"""The hand-off end to end: a form post becomes an MQL in a real worker,
which assigns it and notifies the rep once."""

import pytest
from django.test import Client

from leads.models import Assignment, Lead, Notification
from tests import services
from tests.handoff_helpers import fast_passwords, make_team  # noqa: F401
from tests.worker import running_worker, wait_for

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def worker(tmp_path, django_db_blocker):
    with running_worker(services.redis_url(), tmp_path) as process:
        yield process


def test_a_posted_mql_is_assigned_and_its_rep_notified_by_the_worker(
    web_form, make_user, worker
):
    web_form.interaction_kind = "demo_request"
    web_form.save()
    team, (an, _binh) = make_team(make_user, "north")

    response = Client().post(
        "/f/ebook/",
        {
            "email": "thao.dang@vinatech.vn",
            "phone": "0903 123 456",
            "full_name": "Đặng Thu Thảo",
            "company": "VinaTech",
            "job_title": "Giám đốc marketing",
            "city": "Hồ Chí Minh",
        },
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 202
    wait_for(
        lambda: Notification.objects.filter(kind="assigned").exists(),
        timeout=60,
        what="the worker to assign the lead and notify the rep",
    )
    lead = Lead.objects.get()
    assert (lead.level, lead.owner, lead.team) == ("mql", an, team)
    assert lead.mql_at is not None and lead.accept_due_at is not None
    assert Assignment.objects.get().rep == an
    assert list(Notification.objects.values_list("user", "lead", "kind")) == [
        (an.pk, lead.pk, "assigned")
    ]
