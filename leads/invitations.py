"""Inviting a person: the email with a link to choose a password.

The link is Django's password reset link (the same signed token and the
same confirm page), so it stops working once a password is chosen, after
the user's next login, and after `PASSWORD_RESET_TIMEOUT`.
"""

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

logger = logging.getLogger(__name__)

SUBJECT_TEMPLATE = "registration/invitation_subject.txt"
BODY_TEMPLATE = "registration/invitation_email.txt"


class _InvitationForm(PasswordResetForm):
    """Django's reset email, addressed to the invited account only: the
    stock form writes to every active account with the same address."""

    def __init__(self, *, user):
        super().__init__({"email": user.email})
        self.invitee = user

    def get_users(self, email):
        return [self.invitee] if self.invitee.is_active else []

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        # The stock form logs a failed send and carries on; an invitation
        # that did not go out must fail where it was sent from.
        subject = render_to_string(subject_template_name, context)
        body = render_to_string(email_template_name, context)
        EmailMessage("".join(subject.splitlines()), body, from_email, [to_email]).send()


def invitation_send(*, user, language: str | None = None) -> bool:
    """Email `user` an invitation to LeadCRM with a link to choose a
    password, in `language` (else the active language).

    Answers False, sending nothing, when the user has no valid email
    address or is inactive. A failed send raises the mail backend's error
    (an `OSError` for SMTP).
    """
    form = _InvitationForm(user=user)
    if not form.is_valid() or not user.is_active:
        return False

    # Read in a mail client: the links must name this site, as the other
    # emails' links do, not the host a command or request happened to use.
    public_url = settings.LEADCRM["PUBLIC_URL"].rstrip("/")
    parts = urlsplit(public_url)
    expiry_hours = settings.PASSWORD_RESET_TIMEOUT // 3600
    with translation.override(language or translation.get_language()):
        form.save(
            # Also spares the form a look-up of the current site, which
            # needs a request or the sites framework.
            domain_override=parts.netloc,
            use_https=parts.scheme == "https",
            subject_template_name=SUBJECT_TEMPLATE,
            email_template_name=BODY_TEMPLATE,
            extra_email_context={
                "public_url": public_url,
                "login_url": public_url + reverse("login"),
                # Rounded down: never promise longer than the link works.
                "expiry_days": expiry_hours // 24,
                "expiry_hours": expiry_hours,
            },
        )

    logger.info("Invitation sent to user %s", user.pk)
    return True
