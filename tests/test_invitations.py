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


def test_the_link_opens_a_leadcrm_page_to_choose_a_password(client):
    _invite()

    page = client.get(_link(mail.outbox[0]), follow=True)

    html = page.content.decode()
    assert page.status_code == 200
    assert "registration/password_reset_confirm.html" in [
        t.name for t in page.templates
    ]
    assert "<title>Choose your password · LeadCRM</title>" in html
    assert "Django administration" not in html
    assert "/admin/" not in html
    assert 'name="new_password1"' in html and 'name="new_password2"' in html
    assert "lan@example.vn" in html


def test_the_chosen_password_logs_the_user_in(client):
    _invite()
    form = client.get(_link(mail.outbox[0]), follow=True)

    done = client.post(
        form.redirect_chain[-1][0],
        {
            "new_password1": "mưa-rơi-trên-phố-cổ",
            "new_password2": "mưa-rơi-trên-phố-cổ",
        },
        follow=True,
    )

    html = done.content.decode()
    assert "Your password is saved" in html
    assert "Django administration" not in html
    assert 'href="/login/"' in html
    logged_in = client.post(
        "/login/", {"username": "lan@example.vn", "password": "mưa-rơi-trên-phố-cổ"}
    )
    assert logged_in.status_code == 302
    assert client.session["_auth_user_id"] == str(
        get_user_model().objects.get(username="lan@example.vn").pk
    )


def test_a_used_link_says_so_on_a_leadcrm_page(client):
    _invite()
    link = _link(mail.outbox[0])
    form = client.get(link, follow=True)
    client.post(
        form.redirect_chain[-1][0],
        {
            "new_password1": "mưa-rơi-trên-phố-cổ",
            "new_password2": "mưa-rơi-trên-phố-cổ",
        },
    )

    page = client.get(link, follow=True)

    html = page.content.decode()
    assert "This link no longer works" in html
    assert "Django administration" not in html
    assert 'name="new_password1"' not in html


def test_a_rep_gets_leads_only_once_their_password_is_chosen(client, make_lead):
    from leads.assignment import lead_assign
    from tests.handoff_helpers import make_mql

    lan = _invite("lan@example.vn", "--team", "Hà Nội")
    waiting = make_mql(make_lead, "an@example.vn")

    assert not lan.has_usable_password()
    assert lead_assign(lead_id=waiting.pk) is None
    waiting.refresh_from_db()
    assert (waiting.owner, waiting.team.name) == (None, "Hà Nội")

    form = client.get(_link(mail.outbox[0]), follow=True)
    password = "mưa-rơi-trên-phố-cổ"
    client.post(
        form.redirect_chain[-1][0],
        {"new_password1": password, "new_password2": password},
    )

    assert lead_assign(lead_id=waiting.pk).rep == lan
