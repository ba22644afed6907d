"""Many rows in one statement, for the capture path's batches on PostgreSQL.

The ORM's bulk_create and bulk_update spend more time building each row
(model instances, per-field preparation, a CASE per row and field) than
the database spends storing it; a drained batch of posts writes hundreds
of rows into four tables. These helpers take plain mappings of attribute
names and leave everything else to psycopg2's execute_values.
"""

from collections.abc import Mapping, Sequence

from django.db import connection, models
from django.utils import timezone
from psycopg2.extras import execute_values


def insert_rows(
    model: type[models.Model],
    rows: Sequence[Mapping[str, object]],
    *,
    returning: Sequence[str] = (),
    ignore_conflicts: bool = False,
) -> list[tuple]:
    """INSERT `rows` (attribute -> value, the same attributes in each) in
    one statement; returns the `returning` columns of the rows inserted.

    Fields the rows leave out take their model default, or the statement's
    time for auto_now fields. With `ignore_conflicts` a row that would
    break a unique constraint is skipped and returns nothing.
    """
    if not rows:
        return []
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    given = [f for f in fields if f.attname in rows[0]]
    rest = [f for f in fields if f.attname not in rows[0]]

    json_at = [i for i, f in enumerate(given) if isinstance(f, models.JSONField)]
    values = [_row(given, row, json_at) for row in rows]
    with connection.cursor() as cursor:
        # The defaults are the same in every row: rendered once, as literals.
        placeholders = ["%s"] * len(given)
        if rest:
            defaults = [_prepared(f, _default(f)) for f in rest]
            literal = cursor.mogrify(", ".join(["%s"] * len(rest)), defaults)
            placeholders.append(literal.decode())
        sql = (
            f"INSERT INTO {_quoted(model._meta.db_table)}"
            f" ({', '.join(_quoted(f.column) for f in given + rest)}) VALUES %s"
            + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
            + (f" RETURNING {', '.join(map(_quoted, returning))}" if returning else "")
        )
        return (
            execute_values(
                cursor.cursor,
                sql,
                values,
                template=f"({', '.join(placeholders)})",
                page_size=len(values),
                fetch=bool(returning),
            )
            or []
        )


def update_rows(
    model: type[models.Model],
    rows: Sequence[Mapping[str, object]],
    *,
    types: Mapping[str, str],
) -> int:
    """UPDATE many rows by primary key in one statement, each with values of
    its own; `rows` map "pk" and the attributes to set, `types` gives each
    attribute's SQL type (a VALUES list carries no column types). Returns
    how many rows were updated."""
    if not rows:
        return 0
    names = list(types)
    columns = {name: model._meta.get_field(name).column for name in names}
    pk = model._meta.pk.column
    sets = ", ".join(
        f"{_quoted(columns[n])} = v.{_quoted(n)}::{types[n]}" for n in names
    )
    sql = (
        f"UPDATE {_quoted(model._meta.db_table)} AS t SET {sets}"
        f" FROM (VALUES %s) AS v(pk, {', '.join(map(_quoted, names))})"
        f" WHERE t.{_quoted(pk)} = v.pk"
    )
    values = [(row["pk"], *(row[n] for n in names)) for row in rows]
    with connection.cursor() as cursor:
        execute_values(cursor.cursor, sql, values, page_size=len(values))
        return cursor.cursor.rowcount


def _row(fields, row: Mapping[str, object], json_at: list[int]) -> list:
    values = [row[f.attname] for f in fields]
    for i in json_at:
        values[i] = _prepared(fields[i], values[i])
    return values


def _prepared(field: models.Field, value: object) -> object:
    # JSON goes through the field, so it is stored exactly as the ORM
    # stores it; psycopg2 adapts everything else by itself.
    if isinstance(field, models.JSONField):
        return field.get_db_prep_save(value, connection)
    return value


def _default(field: models.Field) -> object:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return timezone.now()
    return field.get_default()


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)
