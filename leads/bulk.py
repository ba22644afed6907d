"""Many rows in one statement, for the capture path on PostgreSQL.

The ORM's bulk_create and bulk_update spend more time building each row
(model instances, per-field preparation, a CASE per row and field) than
the database spends storing it, and a drained batch of posts writes
hundreds of rows into four tables. These helpers take plain mappings of
attribute names and let the driver render the rows.
"""

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

from django.db import connection, models
from django.utils import timezone


def insert_rows(
    model: type[models.Model],
    rows: Sequence[Mapping[str, object]],
    *,
    returning: Sequence[str] = (),
    ignore_conflicts: bool = False,
) -> list[tuple]:
    """INSERT `rows` (attribute -> value, the same attributes in each) in
    one statement; returns the `returning` columns of the rows inserted.

    Fields the rows leave out take their model default (auto_now fields:
    the time of the call). With `ignore_conflicts` a row that would break a
    unique constraint is skipped and returns nothing.
    """
    if not rows:
        return []
    plan = _insert_plan(model, tuple(rows[0]), tuple(returning), ignore_conflicts)
    # Defaults that a callable gives (times, mostly) are the same in every
    # row of one statement.
    dynamic = [_prepared(f, default()) for f, default in plan.dynamic]
    values = [[row[name] for name in plan.attnames] + dynamic for row in rows]
    for i, field in plan.json:
        for value in values:
            value[i] = _prepared(field, value[i])
    if not returning:
        _execute_values(plan.sql, plan.template, values, fetch=False)
        return []
    return _execute_values(plan.sql, plan.template, values, fetch=True)


class _InsertPlan:
    def __init__(self, model, attnames, returning, ignore_conflicts):
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        self.given = [f for f in fields if f.attname in attnames]
        self.attnames = [f.attname for f in self.given]
        self.json = [
            (i, f) for i, f in enumerate(self.given) if isinstance(f, models.JSONField)
        ]
        rest = [f for f in fields if f.attname not in attnames]
        self.dynamic = [(f, d) for f in rest if (d := _default_of(f)) is not None]
        static = [f for f in rest if _default_of(f) is None]

        placeholders = ["%s"] * (len(self.given) + len(self.dynamic))
        with connection.cursor() as cursor:
            # Constant defaults go into the statement as literals, rendered
            # once for every later insert of the same shape; a % in them
            # is doubled, as the template is itself rendered with values.
            placeholders += [
                cursor.mogrify("%s", [_prepared(f, f.get_default())])
                .decode()
                .replace("%", "%%")
                for f in static
            ]
        columns = self.given + [f for f, _ in self.dynamic] + static
        quote = connection.ops.quote_name
        self.template = f"({', '.join(placeholders)})"
        self.sql = (
            f"INSERT INTO {quote(model._meta.db_table)}"
            f" ({', '.join(quote(f.column) for f in columns)}) VALUES {{values}}"
            + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
            + (f" RETURNING {', '.join(map(quote, returning))}" if returning else "")
        )


@lru_cache(maxsize=64)
def _insert_plan(model, attnames, returning, ignore_conflicts) -> _InsertPlan:
    return _InsertPlan(model, attnames, returning, ignore_conflicts)


def _default_of(field: models.Field) -> Callable[[], object] | None:
    """A callable giving the field's default when it changes call to call."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return timezone.now
    callable_default = field.has_default() and callable(field.default)
    if callable_default and field.default not in (dict, list):
        return field.default
    return None


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
    quote = connection.ops.quote_name
    columns = {name: model._meta.get_field(name).column for name in names}
    sets = ", ".join(f"{quote(columns[n])} = v.{quote(n)}::{types[n]}" for n in names)
    sql = (
        f"UPDATE {quote(model._meta.db_table)} AS t SET {sets}"
        f" FROM (VALUES {{values}}) AS v(pk, {', '.join(map(quote, names))})"
        f" WHERE t.{quote(model._meta.pk.column)} = v.pk"
    )
    values = [(row["pk"], *(row[n] for n in names)) for row in rows]
    template = f"({', '.join(['%s'] * (len(names) + 1))})"
    return _execute_values(sql, template, values, fetch=False)


def _execute_values(sql: str, template: str, rows: list, *, fetch: bool):
    """Run `sql` with its {values} slot filled by the rows, each rendered
    by the driver through `template`: as psycopg2's execute_values does,
    but through Django's cursor, so the statement is counted and logged
    like any other. Returns the rows fetched, or the rows affected."""
    with connection.cursor() as cursor:
        if len(rows) == 1:
            # A capture request's one row: the driver renders it in place.
            cursor.execute(sql.format(values=template), rows[0])
        else:
            render = cursor.cursor.mogrify
            values = ",".join(render(template, row).decode() for row in rows)
            # No parameters: the values are rendered, and a % in them is data.
            cursor.execute(sql.format(values=values))
        return cursor.fetchall() if fetch else cursor.rowcount


def _prepared(field: models.Field, value: object) -> object:
    # JSON goes through the field, so it is stored exactly as the ORM
    # stores it; psycopg2 adapts everything else by itself.
    if isinstance(field, models.JSONField):
        return field.get_db_prep_save(value, connection)
    return value
