"""Public endpoints that emails point at: pixel, links, unsubscribe, bounces.

None of them needs a login; each trusts only its signed token. A bad token
is a 404, so nobody can probe for recipients or bounce people elsewhere.
"""

import base64
import json
import logging

from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .email_tracking import (
    BadToken,
    bounce_from,
    email_bounce_record,
    email_click_record,
    email_open_record,
    email_unsubscribe,
    read_tracking_token,
    read_unsubscribe_token,
)
from .models import EmailRecipient

logger = logging.getLogger(__name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
MAX_BOUNCES = 1000


@never_cache
@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    # The image is answered whatever happens: a broken image in someone's
    # inbox helps nobody.
    try:
        email_open_record(recipient_id=read_tracking_token(token))
    except BadToken:
        logger.info("Open pixel with a bad token")
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
@require_GET
def click(request: HttpRequest, token: str, index: int) -> HttpResponse:
    try:
        recipient_id = read_tracking_token(token)
        url = email_click_record(recipient_id=recipient_id, index=index)
    except BadToken as exc:
        raise Http404(_("This link is not valid.")) from exc
    return HttpResponseRedirect(url)


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks (link checkers fetch every link); POST unsubscribes, also
    as the RFC 8058 one-click POST a mail client sends."""
    try:
        recipient_id = read_unsubscribe_token(token)
    except BadToken as exc:
        raise Http404(_("This link is not valid.")) from exc
    recipient = EmailRecipient.objects.filter(pk=recipient_id).first()
    if recipient is None:
        raise Http404(_("This link is not valid."))

    if request.method == "POST":
        email_unsubscribe(recipient_id=recipient.pk)
        done = True
    else:
        done = recipient.unsubscribed_at is not None
    return render(request, "campaigns/unsubscribe.html", {"done": done, "token": token})


@csrf_exempt
@require_POST
def bounces(request: HttpRequest) -> HttpResponse:
    """Bounce reports from the mail provider, as JSON
    `{"bounces": [{"email", "kind", "reason", "recipient"}]}` with
    `Authorization: Bearer <LEADCRM_BOUNCE_TOKEN>`."""
    expected = settings.LEADCRM["BOUNCE_TOKEN"]
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not expected:
        raise Http404
    if not constant_time_compare(given, expected):
        return JsonResponse({"errors": {"token": [_("Wrong token.")]}}, status=403)

    try:
        data = json.loads(request.body.decode("utf-8"))
        items = data["bounces"]
        reports = [bounce_from(item) for item in items[:MAX_BOUNCES]]
    except (ValueError, KeyError, TypeError, AttributeError):
        message = _("Expected a list of bounces, each with an email or recipient.")
        return JsonResponse({"errors": {"bounces": [message]}}, status=400)
    recorded = sum(1 for report in reports if email_bounce_record(bounce=report))
    return JsonResponse({"recorded": recorded, "unknown": len(reports) - recorded})
