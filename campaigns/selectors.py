import time

from .models import WebForm

# Every post looks its form up; forms change rarely, so each process keeps
# them this many seconds. Deactivating a form or changing its origins takes
# effect within that time.
FORM_CACHE_SECONDS = 10.0

_forms: dict[str, tuple[float, WebForm | None]] = {}


def active_form(key: str) -> WebForm | None:
    """The active form with this key, or None."""
    now = time.monotonic()
    cached = _forms.get(key)
    if cached is not None and now - cached[0] < FORM_CACHE_SECONDS:
        return cached[1]

    # The builder's fields come along: capture checks the required ones.
    form = (
        WebForm.objects.prefetch_related("fields")
        .filter(key=key, is_active=True)
        .first()
    )
    if len(_forms) > 10_000:
        _forms.clear()
    _forms[key] = (now, form)
    return form


def forget_forms() -> None:
    _forms.clear()
