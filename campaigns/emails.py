"""Email composition: merge fields, links and the message for one lead.

The body is plain text written by a marketer. Merge fields are plain
substitution, never template code: `{first_name|there}` is replaced, while
`{{ first_name }}` or `{% if %}` stay exactly as typed. The HTML part is
made from the text by escaping it, so a lead's data cannot inject markup.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from leads.normalize import given_name

MERGE_FIELDS = (
    "first_name",
    "last_name",
    "full_name",
    "company",
    "job_title",
    "industry",
    "city",
    "country",
    "email",
)
CUSTOM_PREFIX = "custom."

# A single brace pair only: a doubled brace is someone else's template
# syntax and stays literal.
_FIELD = (
    r"(?<!\{)\{\s*(?P<name>[A-Za-z_][\w.\-]*)\s*(?:\|(?P<fallback>[^{}\n]*))?\}(?!\})"
)
_URL = r"(?P<url>https?://[^\s<>\"'{}]+)"
_TOKEN = re.compile(f"{_URL}|{_FIELD}")
# Punctuation after an address usually ends the sentence, not the address.
_URL_TAIL = ".,;:!?)]'\""


@dataclass(frozen=True)
class Part:
    text: str = ""
    field: str = ""
    fallback: str = ""
    link: int | None = None


@dataclass(frozen=True)
class Compiled:
    parts: tuple[Part, ...]
    links: tuple[str, ...]


def compile_text(text: str, *, links: list[str] | None = None) -> Compiled:
    """Split a text into literal text, merge fields and links (by index).

    Raises ValidationError naming any unknown merge field.
    """
    links = [] if links is None else links
    parts: list[Part] = []
    unknown: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        parts.append(Part(text=text[position : match.start()]))
        position = match.end()
        if match["url"]:
            url = match["url"].rstrip(_URL_TAIL)
            position = match.start() + len(url)
            if url not in links:
                links.append(url)
            parts.append(Part(link=links.index(url)))
            continue
        name = match["name"]
        if name not in MERGE_FIELDS and not _is_custom(name):
            unknown.append(match.group(0))
        parts.append(Part(field=name, fallback=(match["fallback"] or "").strip()))
    parts.append(Part(text=text[position:]))
    if unknown:
        raise ValidationError(
            _("Unknown merge field: %(fields)s. Known: %(known)s, custom.<key>.")
            % {"fields": ", ".join(unknown), "known": ", ".join(MERGE_FIELDS)}
        )
    return Compiled(parts=tuple(p for p in parts if p != Part()), links=tuple(links))


def _is_custom(name: str) -> bool:
    return name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX)


def merge_values(lead) -> dict[str, str]:
    """What a lead's merge fields stand for; missing ones are absent."""
    values = {name: str(getattr(lead, name) or "").strip() for name in MERGE_FIELDS}
    if not values["first_name"]:
        # Forms often ask for the full name only.
        values["first_name"] = given_name(values["full_name"])
    for key, value in (lead.custom or {}).items():
        if value not in (None, "") and not isinstance(value, dict | list):
            values[f"{CUSTOM_PREFIX}{key}"] = str(value)
    return {name: value for name, value in values.items() if value}


def render_text(
    compiled: Compiled,
    values: Mapping[str, str],
    link_url: Callable[[int], str] | None = None,
) -> str:
    out = []
    for part in compiled.parts:
        if part.link is not None:
            out.append(link_url(part.link) if link_url else compiled.links[part.link])
        elif part.field:
            out.append(values.get(part.field) or part.fallback)
        else:
            out.append(part.text)
    return "".join(out)


def render_html(
    compiled: Compiled,
    values: Mapping[str, str],
    link_url: Callable[[int], str] | None = None,
) -> str:
    out = []
    for part in compiled.parts:
        if part.link is not None:
            url = compiled.links[part.link]
            href = link_url(part.link) if link_url else url
            out.append(f'<a href="{escape(href)}">{escape(url)}</a>')
        elif part.field:
            out.append(escape(values.get(part.field) or part.fallback))
        else:
            out.append(escape(part.text))
    return "".join(out)


def html_document(body_html: str, *, footer_html: str = "", pixel_url: str = "") -> str:
    # Line breaks are kept in the markup: lines under the 998-character limit
    # of RFC 5322 let the part go out as plain 8-bit instead of the far
    # slower (and bigger) quoted-printable.
    paragraphs = "\n".join(
        f"<p>{block.replace(chr(10), '<br>' + chr(10))}</p>"
        for block in re.split(r"\n\s*\n", body_html.strip())
        if block
    )
    pixel = (
        f'<img src="{escape(pixel_url)}" width="1" height="1" alt="" '
        'style="display:block;border:0">'
        if pixel_url
        else ""
    )
    return (
        '<!doctype html>\n<html><body style="font-family:sans-serif;line-height:1.5">\n'
        f"{paragraphs}\n{footer_html}\n{pixel}\n</body></html>\n"
    )


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Template:
    """An email's subject and body, compiled once for a whole batch."""

    subject: Compiled
    body: Compiled

    @classmethod
    def of(cls, *, subject: str, body: str) -> "Template":
        errors = {}
        compiled = {}
        for name, text in (("subject", subject), ("body", body)):
            try:
                compiled[name] = compile_text(text)
            except ValidationError as exc:
                errors[name] = exc.messages
        if errors:
            raise ValidationError(errors)
        if compiled["subject"].links:
            raise ValidationError({"subject": _("A subject cannot hold a link.")})
        return cls(subject=compiled["subject"], body=compiled["body"])

    @property
    def links(self) -> tuple[str, ...]:
        return self.body.links

    def render(
        self,
        values: Mapping[str, str],
        *,
        link_url: Callable[[int], str] | None = None,
        unsubscribe_url: str = "",
        pixel_url: str = "",
    ) -> Rendered:
        # A subject is one line, whatever a lead's data holds.
        subject = " ".join(render_text(self.subject, values).split())
        text = render_text(self.body, values, link_url)
        footer_html = ""
        if unsubscribe_url:
            label = _("Unsubscribe")
            text = f"{text.rstrip()}\n\n--\n{label}: {unsubscribe_url}\n"
            footer_html = (
                '<p style="font-size:small;color:#666">'
                f'<a href="{escape(unsubscribe_url)}">{escape(label)}</a></p>'
            )
        html = html_document(
            render_html(self.body, values, link_url),
            footer_html=footer_html,
            pixel_url=pixel_url,
        )
        return Rendered(subject=subject, text=text, html=html)
