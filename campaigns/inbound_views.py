import json
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .inbound import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryRefused,
    delivery_receive,
    verify,
)
from .models import LeadSource
from .views import declared_length

logger = logging.getLogger(__name__)


def _errors(status: int, errors: dict) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=status)


@csrf_exempt
@require_POST
def receive(request: HttpRequest, key: str) -> JsonResponse:
    """The endpoint lead platforms deliver signed JSON to."""
    source = LeadSource.objects.filter(key=key, is_active=True).first()
    if source is None:
        return _errors(404, {"source": [_("No such lead source.")]})
    length = declared_length(request)
    if length is None:
        return _errors(400, {"body": [_("Bad Content-Length.")]})
    if length > settings.LEADCRM["INBOUND_MAX_BYTES"]:
        return _errors(413, {"body": [_("The delivery is too large.")]})

    body = request.body
    try:
        verify(
            source=source,
            timestamp=request.headers.get(TIMESTAMP_HEADER, ""),
            signature=request.headers.get(SIGNATURE_HEADER, ""),
            body=body,
            now=timezone.now().timestamp(),
        )
        data = _json_object(body)
        delivery = delivery_receive(
            source=source,
            data=data,
            signature=request.headers[SIGNATURE_HEADER],
            remote_addr=request.META.get("REMOTE_ADDR"),
        )
    except DeliveryRefused as exc:
        if exc.status == 401:
            logger.warning(
                "Source %s: delivery refused (%s)", source.pk, ", ".join(exc.errors)
            )
        return _errors(exc.status, exc.errors)

    return JsonResponse({"id": delivery.pk, "status": "accepted"}, status=202)


def _json_object(body: bytes) -> dict:
    try:
        data = json.loads(body.decode("utf-8") or "null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise DeliveryRefused(400, "body", _("The body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise DeliveryRefused(400, "body", _("The JSON body must be an object."))
    return data
