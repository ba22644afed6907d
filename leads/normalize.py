"""Identity normalisation shared by every path that writes a lead.

Pure functions, no database: the capture endpoint validates with them before
it stores a submission, and the ingest service normalises with them again.
"""

import re
import unicodedata

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

_INNER_SPACE = re.compile(r"\s+")


def _has_invisible(value: str) -> bool:
    # Cc are control characters, Cf format characters such as zero-width
    # spaces, joiners and the byte-order mark: invisible in a form, so an
    # address holding one is not the address the person sees. Neither is
    # printable, so the common case is told in one pass in C.
    if value.isprintable():
        return False
    return any(unicodedata.category(char) in {"Cc", "Cf"} for char in value)


def _ascii_domain(domain: str) -> str:
    labels = []
    for label in domain.split("."):
        if label.isascii():
            labels.append(label)
        else:
            labels.append(label.encode("idna").decode("ascii"))
    return ".".join(labels)


def normalize_email(raw: str | None) -> str:
    """Return the canonical form of an email address, or "" when blank.

    White space of any kind is trimmed, full-width forms are folded (NFKC),
    the address is lower-cased and an internationalised domain is stored in
    its ASCII (punycode) form. Raises ValidationError for anything that is
    not a deliverable-looking address.
    """
    if raw is None:
        return ""
    value = unicodedata.normalize("NFKC", str(raw)).strip()
    if not value:
        return ""

    if _has_invisible(value):
        raise ValidationError(
            _("The email address contains invisible characters."), code="invisible"
        )
    if _INNER_SPACE.search(value) or value.count("@") != 1:
        raise ValidationError(_("Enter a valid email address."), code="invalid")

    local, domain = value.lower().rsplit("@", 1)
    try:
        domain = _ascii_domain(domain.rstrip("."))
    except UnicodeError as exc:
        raise ValidationError(
            _("The email domain is not valid."), code="invalid_domain"
        ) from exc

    email = f"{local}@{domain}"
    if len(email) > 254:
        raise ValidationError(_("The email address is too long."), code="too_long")
    validate_email(email)
    return email


def normalize_phone(raw: str | None, region: str | None = None) -> str:
    """Return a phone number in E.164, or "" when blank.

    Numbers without a country code are read in the default region (VN), so
    0912 345 678, 84912345678 and +84 (912) 345-678 are the same number.
    """
    if raw is None:
        return ""
    value = unicodedata.normalize("NFKC", str(raw)).strip()
    if not value:
        return ""

    if _has_invisible(value):
        raise ValidationError(
            _("The phone number contains invisible characters."), code="invisible"
        )
    region = region or settings.LEADCRM["PHONE_DEFAULT_REGION"]
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(_("Enter a valid phone number."), code="invalid") from exc

    if not phonenumbers.is_valid_number(number):
        number = _with_country_code_missing_plus(value, number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _with_country_code_missing_plus(
    value: str, number: phonenumbers.PhoneNumber
) -> phonenumbers.PhoneNumber:
    # People often type the country code without the plus (84912345678);
    # read it that way only when the plain reading is not a valid number.
    digits = re.sub(r"\D", "", value)
    if digits and not value.lstrip().startswith("+"):
        try:
            retry = phonenumbers.parse("+" + digits, None)
        except phonenumbers.NumberParseException:
            retry = None
        if retry is not None and phonenumbers.is_valid_number(retry):
            return retry
    raise ValidationError(_("Enter a valid phone number."), code="invalid")


def normalize_name(raw: str | None) -> str:
    """Unicode NFC with runs of white space folded to one space."""
    if not raw:
        return ""
    value = _INNER_SPACE.sub(" ", unicodedata.normalize("NFC", str(raw)))
    # Invisible characters, and lone surrogates that no database can store;
    # none is printable, and white space is a plain space by now, so a
    # printable value (nearly every name) has none to drop.
    if not value.isprintable():
        value = "".join(
            char
            for char in value
            if unicodedata.category(char) not in {"Cc", "Cf", "Cs"}
        )
    return _INNER_SPACE.sub(" ", value).strip()


# The commonest Vietnamese family names, folded: a full name starting with
# one is written family name first, and the given name is its last word.
_VIETNAMESE_FAMILY_NAMES = frozenset(
    [
        "nguyen",
        "tran",
        "le",
        "pham",
        "hoang",
        "huynh",
        "phan",
        "vu",
        "vo",
        "dang",
        "bui",
        "do",
        "ho",
        "ngo",
        "duong",
        "ly",
        "dinh",
        "truong",
        "mai",
        "trinh",
        "lam",
        "cao",
        "luu",
        "ta",
        "quach",
        "lai",
        "kieu",
        "doan",
        "thai",
    ]
)


def given_name(full_name: str) -> str:
    """The name a person is greeted by: "Nguyễn Thị Mai" -> "Mai",
    "John Smith" -> "John". Empty for an empty name."""
    words = full_name.split()
    if not words:
        return ""
    if fold_for_search(words[0]) in _VIETNAMESE_FAMILY_NAMES and len(words) > 1:
        return words[-1]
    return words[0]


def fold_for_search(*parts: str) -> str:
    """Lower-case text without diacritics, so "nguyen" finds "Nguyễn"."""
    text = " ".join(part for part in parts if part)
    # Đ/đ is a separate letter, not D with a combining mark, so NFD keeps it.
    text = text.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return _INNER_SPACE.sub(" ", stripped.lower()).strip()


# NUL and lone surrogates cannot be stored in PostgreSQL text or jsonb.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_JSON_DEPTH = 8


def storable_text(value: str) -> str:
    return _UNSTORABLE.sub("", value)


def clean_json(value: object, *, depth: int = 0) -> object:
    """Free-form data (custom fields, interaction details) made storable:
    no NUL or lone surrogates, and nested no deeper than MAX_JSON_DEPTH."""
    if depth > MAX_JSON_DEPTH:
        raise ValidationError(_("The data is nested too deeply."), code="too_deep")
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {
            storable_text(str(key)): clean_json(item, depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [clean_json(item, depth=depth + 1) for item in value]
    return value
