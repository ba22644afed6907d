"""Import leads from a CSV file, driven by a JSON mapping.

Every row goes through `lead_ingest`, so an imported lead is normalised and
deduplicated exactly like a form submission. Rows are committed in batches
(one savepoint a row, so a bad row rolls back alone) and the file is read as
a stream, never whole. Re-importing a file is idempotent: each interaction
carries a key made of the source system, the lead's identity and the
interaction's slot in the mapping.

The mapping file
----------------

A JSON object; only "source_system" and an identity are required::

    {
      "source_system": "x-education",
      "external_id": "Prospect ID",
      "blank_values": ["Select"],
      "fields": {"source": "Lead Source", "city": "City"},
      "custom": {
        "tags": "Tags",
        "lead_number": {"column": "Lead Number", "type": "number"}
      },
      "email_consent": {"column": "Do Not Email", "true": ["No"],
                        "false": ["Yes"]},
      "known_outcome": {"column": "Converted", "true": ["1"], "false": ["0"]},
      "interactions": [
        {"slot": "visits", "kind": "page_visit", "quantity": "TotalVisits",
         "details": {"seconds_on_site": {"column": "Total Time Spent on Website",
                                         "type": "number"}}},
        {"slot": "last_activity", "column": "Last Activity",
         "kinds": {"Email Opened": "email_open"}, "default_kind": "other",
         "value_detail": "activity"}
      ]
    }

- "source_system": a short slug naming where the file comes from; part of
  every interaction's idempotency key, so keep it stable between imports.
- "external_id": the column holding the source system's id of the person.
  A lead needs an external id, or an email or phone mapped in "fields".
- "blank_values": cell values that mean "no value" besides the empty cell
  (compared without case). Blank cells never erase what a lead already has.
- "fields": lead field -> column, for email, phone, first_name, last_name,
  full_name, company, job_title, industry, city, country, source, origin.
- "custom": key -> column, kept in the lead's custom data. A column is a
  name or {"column": name, "type": "text" | "number" | "boolean"}; numbers
  become int or float (a decimal comma is read too), booleans read
  yes/no, true/false, 1/0.
- "email_consent", "known_outcome": {"column", "true": [...], "false":
  [...]}: the values that set the flag (compared without case); any other
  value leaves it unknown.
- "interactions": a list; each item records at most one interaction a row.
  "slot" names it (unique, part of the idempotency key). The kind is either
  fixed ("kind") or follows a column's value ("column", "kinds": value ->
  kind, compared without case, "default_kind" for other values; without a
  default, other values record nothing). "quantity" names a column holding
  a count: blank or 0 records nothing. "details" maps detail keys to
  columns like "custom"; the raw value of "column" becomes the interaction's
  subject, which scoring rules can narrow on; "value_detail" also keeps it
  under that key. "channel" defaults to "import".

The delimiter (comma or semicolon) is read from the header line; the file
is UTF-8, with or without a byte-order mark. Row numbers in reports are line
numbers in the file, the header being line 1.
"""

import csv
import hashlib
import json
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TextIO

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.utils.translation import gettext as _
from tqdm import tqdm

from .models import Channel, InteractionKind, Lead
from .normalize import normalize_name
from .services import (
    PROFILE_FIELDS,
    IngestResult,
    InteractionData,
    LeadData,
    identity_errors,
    lead_ingest,
)

logger = logging.getLogger(__name__)

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
LEAD_FIELDS = ("email", "phone", *PROFILE_FIELDS)
VALUE_TYPES = ("text", "number", "boolean")
MAPPING_KEYS = {
    "source_system",
    "external_id",
    "blank_values",
    "fields",
    "custom",
    "email_consent",
    "known_outcome",
    "interactions",
}
INTERACTION_KEYS = {
    "slot",
    "kind",
    "column",
    "kinds",
    "default_kind",
    "value_detail",
    "quantity",
    "details",
    "channel",
}
TRUE_WORDS = frozenset({"yes", "y", "true", "1"})
FALSE_WORDS = frozenset({"no", "n", "false", "0"})
# Keys stay under the Interaction.idempotency_key limit of 200 characters.
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
# Past this many the summary only counts skipped rows, so a file of garbage
# cannot fill the memory with reasons.
MAX_REPORTED_SKIPS = 1000


class CsvImportError(Exception):
    """The import cannot run at all; the message says why."""


class MappingError(CsvImportError):
    """The mapping file is unusable; the message says why."""


class RowError(ValueError):
    """One row holds a value the mapping cannot read."""


class RescoreFunc(Protocol):
    def __call__(
        self,
        *,
        lead_ids: Iterable[int],
        batch_size: int,
        progress: Callable[[int], None] | None,
    ) -> int: ...


@dataclass(frozen=True)
class ValueSpec:
    column: str
    type: str = "text"


@dataclass(frozen=True)
class FlagSpec:
    column: str
    true_values: frozenset[str]
    false_values: frozenset[str]


@dataclass(frozen=True)
class InteractionSpec:
    slot: str
    channel: str
    kind: str = ""
    column: str = ""
    kinds: Mapping[str, str] = field(default_factory=dict)
    default_kind: str = ""
    value_detail: str = ""
    quantity: str = ""
    details: Mapping[str, ValueSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportMapping:
    source_system: str
    external_id: str = ""
    blank_values: frozenset[str] = frozenset({""})
    fields: Mapping[str, str] = field(default_factory=dict)
    custom: Mapping[str, ValueSpec] = field(default_factory=dict)
    email_consent: FlagSpec | None = None
    known_outcome: FlagSpec | None = None
    interactions: tuple[InteractionSpec, ...] = ()

    def columns(self) -> set[str]:
        """Every CSV column the mapping reads."""
        names = {self.external_id, *self.fields.values()}
        names |= {spec.column for spec in self.custom.values()}
        for flag in (self.email_consent, self.known_outcome):
            if flag:
                names.add(flag.column)
        for item in self.interactions:
            names |= {item.column, item.quantity}
            names |= {spec.column for spec in item.details.values()}
        return names - {""}

    def check_header(self, header: Iterable[str]) -> None:
        missing = sorted(self.columns() - set(header))
        if missing:
            raise MappingError(
                _("Columns missing from the CSV header: %(columns)s.")
                % {"columns": ", ".join(f'"{name}"' for name in missing)}
            )


@dataclass
class SkippedRow:
    row: int
    reason: str


@dataclass
class RowWarning:
    """A row imported without one of its values, and why."""

    row: int
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    skipped_rows: list[SkippedRow] = field(default_factory=list)
    # Rows imported with an email or phone that failed validation: the
    # value is kept in the lead's custom data, not as its identity.
    warned: int = 0
    warned_rows: list[RowWarning] = field(default_factory=list)
    rescored: int = 0
    dry_run: bool = False
    # Leads created or changed, in file order, for the rescore at the end.
    touched: dict[int, None] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + self.skipped

    def count(self, result: IngestResult) -> None:
        if result.created:
            self.created += 1
        elif result.changed:
            self.updated += 1
        else:
            self.unchanged += 1
            return
        self.touched[result.lead.pk] = None

    def skip(self, row: int, reason: str) -> None:
        self.skipped += 1
        if len(self.skipped_rows) < MAX_REPORTED_SKIPS:
            self.skipped_rows.append(SkippedRow(row=row, reason=reason))

    def warn(self, row: int, reason: str) -> None:
        self.warned += 1
        if len(self.warned_rows) < MAX_REPORTED_SKIPS:
            self.warned_rows.append(RowWarning(row=row, reason=reason))


# The mapping file


def mapping_load(path: Path) -> ImportMapping:
    """Read and check a mapping file; raises MappingError."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise MappingError(
            _("Cannot read the mapping file: %(error)s") % {"error": exc.strerror}
        ) from exc
    except json.JSONDecodeError as exc:
        raise MappingError(
            _("The mapping file is not valid JSON (line %(line)s): %(error)s")
            % {"line": exc.lineno, "error": exc.msg}
        ) from exc
    return mapping_parse(raw)


def mapping_parse(raw: Any) -> ImportMapping:
    """Check a decoded mapping and build it; raises MappingError."""
    if not isinstance(raw, dict):
        raise MappingError(_("The mapping must be a JSON object."))
    _check_keys(raw, MAPPING_KEYS, _("the mapping"))

    source_system = raw.get("source_system")
    if not isinstance(source_system, str) or not _SLUG.match(source_system):
        raise MappingError(
            _(
                '"source_system" must be a short lower-case name (letters, '
                "digits, dot, dash, underscore; at most 40 characters)."
            )
        )

    fields = _column_table(raw.get("fields", {}), "fields")
    unknown = sorted(set(fields) - set(LEAD_FIELDS))
    if unknown:
        raise MappingError(
            _('Unknown lead field %(names)s in "fields"; known fields: %(known)s.')
            % {"names": ", ".join(unknown), "known": ", ".join(LEAD_FIELDS)}
        )

    external_id = _column(raw.get("external_id", ""), "external_id", blank=True)
    if not (external_id or "email" in fields or "phone" in fields):
        raise MappingError(
            _('Map an identity: "external_id", or "email" or "phone" in "fields".')
        )

    blank_values = raw.get("blank_values", [])
    if not _is_str_list(blank_values):
        raise MappingError(_('"blank_values" must be a list of strings.'))

    return ImportMapping(
        source_system=source_system,
        external_id=external_id,
        blank_values=frozenset({"", *(v.strip().casefold() for v in blank_values)}),
        fields=fields,
        custom=_value_specs(raw.get("custom", {}), "custom"),
        email_consent=_flag(raw.get("email_consent"), "email_consent"),
        known_outcome=_flag(raw.get("known_outcome"), "known_outcome"),
        interactions=_interactions(raw.get("interactions", [])),
    )


def _check_keys(raw: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise MappingError(
            _("Unknown key %(keys)s in %(where)s; allowed: %(allowed)s.")
            % {
                "keys": ", ".join(unknown),
                "where": where,
                "allowed": ", ".join(sorted(allowed)),
            }
        )


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _column(value: Any, where: str, *, blank: bool = False) -> str:
    if isinstance(value, str) and (value.strip() or blank):
        return value.strip()
    raise MappingError(_('"%(where)s" must name a CSV column.') % {"where": where})


def _column_table(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise MappingError(_('"%(where)s" must be an object.') % {"where": where})
    return {key: _column(value, f"{where}.{key}") for key, value in raw.items()}


def _value_specs(raw: Any, where: str) -> dict[str, ValueSpec]:
    if not isinstance(raw, dict):
        raise MappingError(_('"%(where)s" must be an object.') % {"where": where})

    specs = {}
    for key, value in raw.items():
        if isinstance(value, str):
            specs[key] = ValueSpec(column=_column(value, f"{where}.{key}"))
            continue
        if not isinstance(value, dict):
            raise MappingError(
                _('"%(where)s" must be a column name or {"column", "type"}.')
                % {"where": f"{where}.{key}"}
            )
        _check_keys(value, {"column", "type"}, f'"{where}.{key}"')
        value_type = value.get("type", "text")
        if value_type not in VALUE_TYPES:
            raise MappingError(
                _('Unknown type "%(type)s" in "%(where)s"; known types: %(known)s.')
                % {
                    "type": value_type,
                    "where": f"{where}.{key}",
                    "known": ", ".join(VALUE_TYPES),
                }
            )
        column = _column(value.get("column"), f"{where}.{key}.column")
        specs[key] = ValueSpec(column=column, type=value_type)
    return specs


def _flag(raw: Any, where: str) -> FlagSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise MappingError(_('"%(where)s" must be an object.') % {"where": where})

    _check_keys(raw, {"column", "true", "false"}, f'"{where}"')
    true_values = raw.get("true", [])
    false_values = raw.get("false", [])
    if not (_is_str_list(true_values) and _is_str_list(false_values)):
        raise MappingError(
            _('"%(where)s.true" and ".false" must be lists of strings.')
            % {"where": where}
        )
    return FlagSpec(
        column=_column(raw.get("column"), f"{where}.column"),
        true_values=frozenset(v.strip().casefold() for v in true_values),
        false_values=frozenset(v.strip().casefold() for v in false_values),
    )


def _interactions(raw: Any) -> tuple[InteractionSpec, ...]:
    if not isinstance(raw, list):
        raise MappingError(_('"interactions" must be a list.'))

    specs: list[InteractionSpec] = []
    for position, item in enumerate(raw, start=1):
        where = f"interactions[{position}]"
        if not isinstance(item, dict):
            raise MappingError(_('"%(where)s" must be an object.') % {"where": where})
        _check_keys(item, INTERACTION_KEYS, f'"{where}"')
        specs.append(_interaction(item, where))

    slots = [spec.slot for spec in specs]
    if len(set(slots)) != len(slots):
        raise MappingError(_('Each interaction needs its own "slot" name.'))
    return tuple(specs)


def _interaction(item: dict, where: str) -> InteractionSpec:
    slot = item.get("slot")
    if not isinstance(slot, str) or not _SLUG.match(slot):
        raise MappingError(
            _('"%(where)s.slot" must be a short lower-case name.') % {"where": where}
        )

    kinds = item.get("kinds", {})
    if not isinstance(kinds, dict):
        raise MappingError(_('"%(where)s.kinds" must be an object.') % {"where": where})
    for kind in [item.get("kind", ""), item.get("default_kind", ""), *kinds.values()]:
        if kind and kind not in InteractionKind.values:
            raise MappingError(
                _(
                    'Unknown interaction kind "%(kind)s" in "%(where)s"; '
                    "known: %(known)s."
                )
                % {
                    "kind": kind,
                    "where": where,
                    "known": ", ".join(InteractionKind.values),
                }
            )

    column = _column(item.get("column", ""), f"{where}.column", blank=True)
    fixed = item.get("kind", "")
    if bool(fixed) == bool(column and kinds):
        raise MappingError(
            _('"%(where)s" needs either "kind", or "column" with "kinds".')
            % {"where": where}
        )

    channel = item.get("channel", Channel.IMPORT)
    if channel not in Channel.values:
        raise MappingError(
            _('Unknown channel "%(channel)s" in "%(where)s"; known: %(known)s.')
            % {"channel": channel, "where": where, "known": ", ".join(Channel.values)}
        )

    return InteractionSpec(
        slot=slot,
        channel=channel,
        kind=fixed,
        column=column,
        kinds={str(value).strip().casefold(): kind for value, kind in kinds.items()},
        default_kind=item.get("default_kind", ""),
        value_detail=str(item.get("value_detail", "")),
        quantity=_column(item.get("quantity", ""), f"{where}.quantity", blank=True),
        details=_value_specs(item.get("details", {}), f"{where}.details"),
    )


# Reading rows


def row_to_ingest(
    values: Mapping[str, str], mapping: ImportMapping
) -> tuple[LeadData, list[InteractionData]]:
    """Turn one CSV row (column -> cell) into what `lead_ingest` takes.

    Raises RowError for a value the mapping cannot read.
    """
    cell = partial(_cell, values, mapping.blank_values)

    fields = {name: cell(column) for name, column in mapping.fields.items()}
    external_id = normalize_name(cell(mapping.external_id))
    for name, value in [*fields.items(), ("external_id", external_id)]:
        _check_length(name, value)
    custom = {
        key: _typed(cell(spec.column), spec)
        for key, spec in mapping.custom.items()
        if cell(spec.column)
    }

    data = LeadData(
        **fields,
        external_id=external_id,
        custom=custom,
        email_consent=_flag_value(cell, mapping.email_consent),
        known_outcome=_flag_value(cell, mapping.known_outcome),
    )
    identity = _identity(data)
    interactions = [
        interaction
        for spec in mapping.interactions
        if (interaction := _interaction_of(cell, spec, mapping, identity))
    ]
    return data, interactions


def _cell(values: Mapping[str, str], blanks: frozenset[str], column: str) -> str:
    if not column:
        return ""
    value = unicodedata.normalize("NFC", (values.get(column) or "").strip())
    return "" if value.casefold() in blanks else value


def _check_length(name: str, value: str) -> None:
    # Email and phone are shortened by normalisation, which validates them.
    if name in ("email", "phone"):
        return
    limit = Lead._meta.get_field(name).max_length
    if limit and len(value) > limit:
        raise RowError(
            _("%(field)s: longer than %(limit)s characters")
            % {"field": name, "limit": limit}
        )


def _typed(value: str, spec: ValueSpec) -> str | int | float | bool:
    if spec.type == "number":
        return _number(value, spec.column)
    if spec.type == "boolean":
        word = value.casefold()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise RowError(_("%(column)s: not a yes/no value") % {"column": spec.column})
    return value


def _number(value: str, column: str) -> int | float:
    text = value.replace(" ", "")
    # A semicolon-separated export usually comes with decimal commas.
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise RowError(_("%(column)s: not a number") % {"column": column}) from None
    if not math.isfinite(number):
        raise RowError(_("%(column)s: not a number") % {"column": column})
    return int(number) if number.is_integer() else number


def _flag_value(cell: Callable[[str], str], spec: FlagSpec | None) -> bool | None:
    if spec is None:
        return None
    value = cell(spec.column).casefold()
    if value in spec.true_values:
        return True
    if value in spec.false_values:
        return False
    return None


def _identity(data: LeadData) -> str:
    """The part of an interaction key that names the person.

    The strongest identity that the row holds, so a later file that adds a
    phone to a known email still finds the same keys. Emails and phone
    numbers are hashed: keys are not a place for personal data.
    """
    if data.external_id:
        return data.external_id
    email, phone, _errors = identity_errors(email=data.email, phone=data.phone)
    for name, value in (("email", email), ("phone", phone)):
        if value:
            return f"{name}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"
    return ""


def _interaction_of(
    cell: Callable[[str], str],
    spec: InteractionSpec,
    mapping: ImportMapping,
    identity: str,
) -> InteractionData | None:
    quantity = 1
    if spec.quantity:
        count = _number(cell(spec.quantity) or "0", spec.quantity)
        if isinstance(count, float) or count < 0:
            raise RowError(
                _("%(column)s: not a whole number") % {"column": spec.quantity}
            )
        quantity = count
    if quantity == 0:
        return None

    kind = spec.kind
    value = cell(spec.column)
    if spec.column:
        if not value:
            return None
        kind = spec.kinds.get(value.casefold(), spec.default_kind)
        if not kind:
            return None

    details = {
        key: _typed(cell(detail.column), detail)
        for key, detail in spec.details.items()
        if cell(detail.column)
    }
    if spec.value_detail and value:
        details[spec.value_detail] = value
    key = f"import:{mapping.source_system}:{identity}:{spec.slot}" if identity else None
    return InteractionData(
        kind=kind,
        channel=spec.channel,
        # The raw value names what happened ("SMS Sent"), so scoring rules
        # can narrow on it even where several values share one kind.
        subject=value if spec.column else "",
        quantity=quantity,
        details=details,
        idempotency_key=key,
    )


# The import


def lead_import_csv(
    *,
    path: Path,
    mapping: ImportMapping,
    limit: int | None = None,
    batch_size: int = 500,
    dry_run: bool = False,
    rescore: RescoreFunc | None = None,
    progress_file: TextIO | None = None,
) -> ImportReport:
    """Import a CSV file row by row through `lead_ingest`.

    Rows are committed `batch_size` at a time. `rescore` (scoring's
    `score_recompute_many`; `leads` does not import scoring) rescores the
    created and updated leads after the last row. A dry run rolls every
    batch back and rescores nothing. A progress bar goes to `progress_file`
    when it is a terminal. Raises CsvImportError when the file or mapping
    cannot be used at all; a bad row is only counted and reported.
    """
    report = ImportReport(dry_run=dry_run)
    total = _count_lines(path) - 1
    if limit is not None:
        total = min(total, limit)

    with _csv_records(path) as (header, records):
        mapping.check_header(header)
        with _bar(progress_file, total=max(total, 0), unit="row") as bar:
            for batch in _batches(records, batch_size, limit):
                _import_batch(batch, header, mapping, report)
                bar.update(len(batch))

    if rescore and report.touched and not dry_run:
        report.rescored = _rescore(rescore, report, batch_size, progress_file)

    logger.info(
        "Import %s: %s created, %s updated, %s unchanged, %s skipped%s",
        mapping.source_system,
        report.created,
        report.updated,
        report.unchanged,
        report.skipped,
        " (dry run)" if dry_run else "",
    )
    return report


Record = tuple[int, list[str] | None, str]


@contextmanager
def _csv_records(path: Path) -> Iterator[tuple[list[str], Iterator[Record]]]:
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
    except OSError as exc:
        raise CsvImportError(
            _("Cannot read the CSV file: %(error)s") % {"error": exc.strerror}
        ) from exc

    with handle:
        try:
            first_line = handle.readline()
            handle.seek(0)
            reader = csv.reader(handle, delimiter=_sniff_delimiter(first_line))
            header = [name.strip() for name in next(reader, [])]
            if not any(header):
                raise CsvImportError(_("The CSV file has no header line."))
            yield header, _records(reader)
        except UnicodeDecodeError as exc:
            # Batches before the bad bytes stay imported; a re-run after the
            # file is fixed adds nothing twice.
            raise CsvImportError(
                _("The CSV file is not UTF-8 text; save it as UTF-8 and retry.")
            ) from exc


def _sniff_delimiter(header_line: str) -> str:
    try:
        return csv.Sniffer().sniff(header_line, delimiters=",;").delimiter
    except csv.Error:
        return ";" if header_line.count(";") > header_line.count(",") else ","


def _records(reader: Any) -> Iterator[Record]:
    """(line number, cells or None, error) for each record of the file.

    A malformed record (a field past the size limit, say) is reported and
    reading goes on with the next line.
    """
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, None, str(exc)
            continue
        if any(cell.strip() for cell in row):
            yield reader.line_num, row, ""


def _batches(
    records: Iterator[Record], size: int, limit: int | None
) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for taken, record in enumerate(records, start=1):
        if limit is not None and taken > limit:
            break
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _import_batch(
    batch: list[Record],
    header: list[str],
    mapping: ImportMapping,
    report: ImportReport,
) -> None:
    # One transaction a batch: a commit per row is slow, one for the whole
    # file holds locks for minutes. lead_ingest's own atomic block is a
    # savepoint in here, so a row the database refuses rolls back alone.
    with transaction.atomic():
        for line, row, error in batch:
            if row is None:
                _skip(report, line, _("unreadable CSV: %(error)s") % {"error": error})
                continue
            try:
                # A short row reads as blanks; cells past the header are ignored.
                values = dict(zip(header, row, strict=False))
                data, interactions = row_to_ingest(values, mapping)
                result = lead_ingest(
                    data=data, interactions=interactions, announce=False
                )
            except ValidationError as exc:
                _skip(report, line, _validation_reason(exc))
            except RowError as exc:
                _skip(report, line, str(exc))
            except (DataError, IntegrityError) as exc:
                # The database's message may quote the row's values.
                _skip(
                    report,
                    line,
                    _("the database refused the row (%(error)s)")
                    % {"error": type(exc).__name__},
                )
            else:
                report.count(result)
                _warn_set_aside(report, line, result.set_aside)

        if report.dry_run:
            transaction.set_rollback(True)


def _skip(report: ImportReport, line: int, reason: str) -> None:
    logger.info("Import row %s skipped: %s", line, reason)
    report.skip(line, reason)


def _warn_set_aside(report: ImportReport, line: int, set_aside: dict) -> None:
    """An invalid email or phone does not sink a row that has another
    identity, but the person importing should know it was set aside."""
    if not set_aside:
        return
    # One warning a row, however many of its values were set aside: the
    # summary counts rows, beside the rows read, created and skipped.
    report.warn(
        line,
        "; ".join(
            _("%(field)s not imported (%(error)s); kept as %(custom)s")
            % {"field": name, "error": " ".join(messages), "custom": f"invalid_{name}"}
            for name, messages in set_aside.items()
        ),
    )


def _validation_reason(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        # Messages end with a full stop already: "email: …. phone: …."
        return " ".join(
            f"{name}: {' '.join(messages)}"
            for name, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)


def _rescore(
    rescore: RescoreFunc,
    report: ImportReport,
    batch_size: int,
    progress_file: TextIO | None,
) -> int:
    with _bar(progress_file, total=len(report.touched), unit="lead") as bar:
        return rescore(
            lead_ids=list(report.touched),
            batch_size=batch_size,
            progress=lambda done: bar.update(done - bar.n),
        )


def _bar(progress_file: TextIO | None, **kwargs: Any) -> tqdm:
    # disable=None lets tqdm hide the bar when the output is not a terminal.
    return tqdm(
        file=progress_file,
        disable=True if progress_file is None else None,
        dynamic_ncols=True,
        **kwargs,
    )


def _count_lines(path: Path) -> int:
    """Lines in the file, for the progress bar: a fast pass over the bytes."""
    try:
        with open(path, "rb") as handle:
            return sum(
                chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")
            )
    except OSError:
        return 0


@contextmanager
def quiet_loggers(*names: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise the level of some loggers for a while.

    Bulk commands use it so one info line per lead does not drown the
    progress bar and the summary.
    """
    loggers = [logging.getLogger(name) for name in names]
    before = [item.level for item in loggers]
    for item in loggers:
        item.setLevel(max(item.getEffectiveLevel(), level))
    try:
        yield
    finally:
        for item, old in zip(loggers, before, strict=True):
            item.setLevel(old)
