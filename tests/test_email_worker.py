"""Email campaigns sent by a real Celery worker, with PostgreSQL and Redis."""

import re

import pytest

from campaigns.email_sending import email_campaign_send
from campaigns.models import Campaign, EmailCampaign, EmailStatus, Segment
from campaigns.tasks import send_email_batches
from tests import services
from tests.worker import WorkerProcess, publishing_to, wait_for

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def mail_dir(tmp_path, monkeypatch):
    # The worker process reads its settings from the environment it starts in.
    directory = tmp_path / "mail"
    monkeypatch.setenv(
        "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend"
    )
    monkeypatch.setenv("DJANGO_EMAIL_FILE_PATH", str(directory))
    monkeypatch.setenv("LEADCRM_EMAIL_BATCH_SIZE", "3")
    monkeypatch.setenv("LEADCRM_EMAIL_RATE_PER_SECOND", "0")
    return directory


@pytest.fixture
def worker(tmp_path, mail_dir):
    process = WorkerProcess(services.redis_url(), tmp_path)
    process.start()
    with publishing_to(process.broker_url, process.queue):
        yield process
    process.stop()


def sent_headers(directory) -> list[str]:
    text = "".join(p.read_text() for p in directory.glob("*.log"))
    return re.findall(r"^X-LeadCRM-Recipient: (\S+)", text, flags=re.M)


def test_batches_racing_on_one_campaign_send_each_message_once(
    make_lead, make_user, worker, mail_dir
):
    for n in range(10):
        make_lead(email=f"lead{n}@example.vn", first_name=f"Lead {n}",
                  email_consent=True)  # fmt: skip
    make_lead(email="refused@example.vn", email_consent=False)
    email = EmailCampaign.objects.create(
        campaign=Campaign.objects.create(name="Webinar"),
        segment=Segment.objects.create(name="Everyone"),
        name="Invitation",
        subject="{first_name|Hello}, join us",
        body="Register at https://example.vn/webinar",
    )
    sender = make_user("sender", perms=["campaigns.send_emailcampaign"])

    email_campaign_send(email_campaign_id=email.pk, by=sender)
    # Two more workers' worth of batches on the same campaign.
    send_email_batches.delay(email.pk)
    send_email_batches.delay(email.pk)

    def finished():
        email.refresh_from_db()
        return email.status == EmailStatus.SENT

    wait_for(finished, timeout=60, what="the worker to send the campaign")
    headers = sent_headers(mail_dir)
    assert len(headers) == 10
    assert len(set(headers)) == 10
    assert email.recipients.filter(status="sent").count() == 10
    assert "ERROR" not in worker.log()
