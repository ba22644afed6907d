"""Spam defences a capture request applies itself: honeypot and time trap.

The time trap: every form we render (hosted page, embed script) carries a
signed token with the form's key and the time it was shown. A post sooner
than the form's minimum is a bot; a forged token, one for another form or
one older than a day is spam too. A post without a token (a plain HTML copy
of the form, an API client) is spam only when the form requires a token.
"""

import time
from collections.abc import Mapping

from django.core import signing

from .models import SpamReason, WebForm

# A honeypot: invisible to people, filled in by bots that fill everything.
HONEYPOT_FIELD = "website"
TOKEN_FIELD = "_ts"
TOKEN_SALT = "leadcrm.campaigns.render-token"
TOKEN_MAX_AGE_SECONDS = 24 * 3600


def render_token(form_key: str, *, now: float | None = None) -> str:
    shown = int(time.time() if now is None else now)
    return signing.Signer(salt=TOKEN_SALT).sign_object([form_key, shown])


def token_problem(form: WebForm, token: str, *, now: float | None = None) -> str:
    """The spam reason of a post's render token, or "" when it passes."""
    if not token:
        return SpamReason.NO_TOKEN if form.require_render_token else ""
    try:
        key, shown = signing.Signer(salt=TOKEN_SALT).unsign_object(token)
        age = (time.time() if now is None else now) - float(shown)
    except (signing.BadSignature, ValueError, TypeError):
        return SpamReason.BAD_TOKEN
    if key != form.key or age > TOKEN_MAX_AGE_SECONDS:
        return SpamReason.BAD_TOKEN
    if age < form.min_fill_seconds:
        return SpamReason.TOO_FAST
    return ""


def spam_reason(form: WebForm, data: Mapping[str, object]) -> str:
    """Why a post is spam by what it holds, or "". Rate limits are counted
    when a worker takes the post (campaigns.ratelimit)."""
    if str(data.get(HONEYPOT_FIELD) or "").strip():
        return SpamReason.HONEYPOT
    return token_problem(form, str(data.get(TOKEN_FIELD) or ""))
