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
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .models import WebForm
from .selectors import active_form
from .services import SubmissionRejected, submission_receive

logger = logging.getLogger(__name__)


def _wants_json(request: HttpRequest) -> bool:
    return request.content_type == "application/json" or (
        "application/json" in request.headers.get("Accept", "")
        and "text/html" not in request.headers.get("Accept", "")
    )


def _cors(response: HttpResponse, form: WebForm, origin: str | None) -> HttpResponse:
    if origin and form.origin_allowed(origin):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Headers"] = "Content-Type, Accept"
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Vary"] = "Origin"
    return response


def _error(request, form, status: int, errors: dict) -> HttpResponse:
    origin = request.headers.get("Origin")
    if _wants_json(request):
        response = JsonResponse({"errors": errors}, status=status)
    else:
        response = render(
            request,
            "campaigns/capture_error.html",
            {"form": form, "errors": errors},
            status=status,
        )
    return _cors(response, form, origin)


class NotAnObject(ValueError):
    pass


def _read_body(request: HttpRequest) -> dict:
    if request.content_type == "application/json":
        data = json.loads(request.body.decode("utf-8") or "{}")
        if not isinstance(data, dict):
            raise NotAnObject
        return data
    return {
        key: values[0] if len(values) == 1 else values
        for key, values in request.POST.lists()
    }


def _unknown_form(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"errors": {"form": [_("No such form.")]}}, status=404)
    raise Http404(_("No such form."))


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def capture(request: HttpRequest, key: str) -> HttpResponse:
    """The public endpoint every website's form posts to."""
    form = active_form(key)
    if form is None:
        return _unknown_form(request)
    origin = request.headers.get("Origin")
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), form, origin)

    if not form.origin_allowed(origin):
        return _error(request, form, 403, {"origin": [_("Origin not allowed.")]})
    length = int(request.headers.get("Content-Length") or 0)
    if length > settings.LEADCRM["CAPTURE_MAX_BYTES"]:
        return _error(request, form, 413, {"body": [_("The submission is too large.")]})

    try:
        data = _read_body(request)
    except NotAnObject:
        return _error(
            request, form, 400, {"body": [_("The JSON body must be an object.")]}
        )
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _error(request, form, 400, {"body": [_("The body is not valid JSON.")]})

    try:
        submission = submission_receive(
            form=form,
            data=data,
            remote_addr=request.META.get("REMOTE_ADDR"),
            user_agent=request.headers.get("User-Agent", ""),
            referer=request.headers.get("Referer", ""),
        )
    except SubmissionRejected as exc:
        return _error(request, form, 400, exc.errors)

    if _wants_json(request):
        response = JsonResponse({"id": submission.pk, "status": "accepted"}, status=202)
        return _cors(response, form, origin)
    # 303 makes the browser follow with a GET, so a reload cannot post twice.
    response = HttpResponseRedirect(
        form.thank_you_url or reverse("campaigns:thanks", args=[form.key])
    )
    response.status_code = 303
    return response


def thanks(request: HttpRequest, key: str) -> HttpResponse:
    form = get_object_or_404(WebForm, key=key)
    return render(request, "campaigns/capture_thanks.html", {"form": form})
