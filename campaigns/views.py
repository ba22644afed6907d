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
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from leads.services import UTM_KEYS

from .models import LEAD_FIELDS, WebForm
from .selectors import active_form
from .services import (
    ConsentLinkInvalid,
    SubmissionRejected,
    consent_confirm,
    submission_receive,
)
from .spam import HONEYPOT_FIELD, TOKEN_FIELD, render_token

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
            {"form": form, "errors": _error_lines(form, errors)},
            status=status,
        )
    return _cors(response, form, origin)


def _error_lines(form, errors: dict) -> list[tuple[str, str]]:
    """(field labels, message) for a person: a message given for several
    fields ("an email or a phone", "This field is required.") shows once,
    naming each of them."""
    labels = {field.name: field.label() for field in form.fields.all()}
    fields_of: dict[str, list[str]] = {}
    for name, messages in errors.items():
        for message in messages:
            named = fields_of.setdefault(message, [])
            label = _label(name, labels)
            if label and label not in named:
                named.append(label)
    return [(", ".join(named), message) for message, named in fields_of.items()]


def _label(name: str, labels: dict[str, str]) -> str:
    if name in labels:
        return labels[name]
    if name in LEAD_FIELDS:
        return str(LEAD_FIELDS[name][1])
    return ""


def client_ip(request: HttpRequest) -> str | None:
    """The visitor's address. Behind N trusted proxies (LEADCRM_PROXY_COUNT)
    it is the Nth address from the right of X-Forwarded-For: the ones to its
    left are whatever the client chose to send."""
    hops = settings.LEADCRM["PROXY_COUNT"]
    forwarded = request.headers.get("X-Forwarded-For", "")
    if hops and forwarded:
        addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(addresses) >= hops:
            return addresses[-hops]
    return request.META.get("REMOTE_ADDR")


class NotAnObject(ValueError):
    pass


def declared_length(request: HttpRequest) -> int | None:
    """The body's length as the Content-Length header declares it: 0 when
    absent, None when it is not a number of bytes (a bad request)."""
    raw = (request.headers.get("Content-Length") or "0").strip()
    if not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


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
@require_http_methods(["GET", "HEAD", "POST", "OPTIONS"])
def capture(request: HttpRequest, key: str) -> HttpResponse:
    """The public endpoint every website's form posts to; a GET shows the
    hosted page of the form."""
    form = active_form(key)
    if form is None:
        return _unknown_form(request)
    origin = request.headers.get("Origin")
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), form, origin)
    if request.method in ("GET", "HEAD"):
        return hosted_form(request, form)

    if not form.origin_allowed(origin):
        return _error(request, form, 403, {"origin": [_("Origin not allowed.")]})
    length = declared_length(request)
    if length is None:
        return _error(request, form, 400, {"body": [_("Bad Content-Length.")]})
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
        submission_id = submission_receive(
            form=form,
            data=data,
            remote_addr=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            referer=request.headers.get("Referer", ""),
        )
    except SubmissionRejected as exc:
        return _error(request, form, 400, exc.errors)

    if _wants_json(request):
        response = JsonResponse({"id": submission_id, "status": "accepted"}, status=202)
        return _cors(response, form, origin)
    # 303 makes the browser follow with a GET, so a reload cannot post twice.
    response = HttpResponseRedirect(form.thanks_url)
    response.status_code = 303
    return response


@never_cache
def hosted_form(request: HttpRequest, form: WebForm) -> HttpResponse:
    """The form on a page of our own, in the visitor's language (or the one
    `?lang=` names), with a fresh time-trap token and the page's UTM values
    in hidden fields."""
    language = request.GET.get("lang", "")
    if language not in dict(settings.LANGUAGES):
        language = translation.get_language()
    with translation.override(language):
        context = {
            "form": form,
            "fields": list(form.fields.all()),
            "utm": {key: request.GET.get(key, "")[:200] for key in UTM_KEYS},
            "token": render_token(form.key),
            "token_field": TOKEN_FIELD,
            "honeypot_field": HONEYPOT_FIELD,
            "consent_text": form.consent_texts.first(),
            "language": language,
        }
        return render(request, "campaigns/hosted_form.html", context)


@never_cache
@require_GET
def token(request: HttpRequest, key: str) -> HttpResponse:
    """A fresh time-trap token for the embed script on another site."""
    form = active_form(key)
    if form is None:
        return _unknown_form(request)
    response = JsonResponse({"field": TOKEN_FIELD, "token": render_token(form.key)})
    return _cors(response, form, request.headers.get("Origin"))


def thanks(request: HttpRequest, key: str) -> HttpResponse:
    form = get_object_or_404(WebForm, key=key)
    return render(request, "campaigns/capture_thanks.html", {"form": form})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def consent_confirmation(request: HttpRequest, token: str) -> HttpResponse:
    """Double opt-in: the link from the email shows a button, and the post
    confirms. Link checkers in mail systems follow GETs; only a person
    presses the button. No CSRF token: the signed link is the secret."""
    if request.method == "GET":
        return render(request, "campaigns/consent_confirm.html", {"token": token})

    try:
        record = consent_confirm(token=token)
    except ConsentLinkInvalid as exc:
        return render(
            request,
            "campaigns/consent_confirm.html",
            {"token": token, "invalid": True, "expired": exc.expired},
            status=400,
        )
    return render(
        request, "campaigns/consent_confirm.html", {"confirmed": True, "record": record}
    )
