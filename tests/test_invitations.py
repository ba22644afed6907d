"""Inviting a person: the email `invite_user` sends and the pages its link
opens."""

import re
import smtplib
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from tests.handoff_helpers import fast_passwords  # noqa: F401

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://crm.example.com/"
LINK = re.compile(r"https://crm\.example\.com(/password/\S+/\S+/)")


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.LEADCRM = {**settings.LEADCRM, "PUBLIC_URL": PUBLIC_URL}


def _invite(email="lan@example.vn", *args):
    call_command(
        "invite_user", email, "--role", "Sales rep", *args, stdout=StringIO()
    )  # fmt: skip
    return get_user_model().objects.get(username=email)


def _link(message) -> str:
    found = LINK.search(message.body)
    assert found, message.body
    return found.group(1)


def test_the_invitation_says_what_leadcrm_is_and_how_to_start():
    _invite("lan@example.vn", "--name", "Nguyễn Lan")

    (message,) = mail.outbox
    assert message.to == ["lan@example.vn"]
    assert message.subject == "Your invitation to LeadCRM"
    assert message.body.startswith("Hello Nguyễn Lan,")
    assert "You have an account in LeadCRM, the system your company" in message.body
    assert "choose your password" in message.body
    assert "The link works for 3 days." in message.body
    assert "Your username: lan@example.vn" in message.body
    assert "log in at https://crm.example.com/login/" in message.body
    assert "password reset" not in (message.subject + message.body).lower()
    assert "requested" not in message.body


def test_the_invitation_link_is_built_from_the_public_url():
    lan = _invite()

    link = _link(mail.outbox[0])
    assert "127.0.0.1" not in mail.outbox[0].body
    uidb64 = link.split("/")[2]
    assert force_str(urlsafe_base64_decode(uidb64)) == str(lan.pk)


def test_the_expiry_follows_the_token_timeout(settings):
    settings.PASSWORD_RESET_TIMEOUT = 5 * 3600

    _invite()

    assert "The link works for 5 hours." in mail.outbox[0].body


def test_the_invitation_goes_out_in_the_language_asked():
    _invite("lan@example.vn", "--language", "vi")

    body = mail.outbox[0].body
    assert body.startswith("Xin chào,")
    assert "Liên kết có hiệu lực trong 3 ngày." in body


def test_the_invitation_keeps_a_name_as_typed():
    _invite("darcy@example.vn", "--name", "D'Arcy <Trần>")

    assert mail.outbox[0].body.startswith("Hello D'Arcy <Trần>,")


def test_the_invitation_goes_to_the_invited_account_only(django_user_model):
    django_user_model.objects.create_user(
        username="lan-old", email="lan@example.vn", password="x-long-password"
    )

    lan = _invite()

    (message,) = mail.outbox
    uidb64 = _link(message).split("/")[2]
    assert force_str(urlsafe_base64_decode(uidb64)) == str(lan.pk)


def test_a_failed_send_stops_the_command(monkeypatch):
    def refuse(self, messages):
        raise smtplib.SMTPServerDisconnected("gone")

    monkeypatch.setattr(
        "django.core.mail.backends.locmem.EmailBackend.send_messages", refuse
    )

    with pytest.raises(CommandError, match="could not be sent"):
        _invite()

    assert get_user_model().objects.filter(username="lan@example.vn").exists()
