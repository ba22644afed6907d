import sys
import time
from contextlib import nullcontext
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from leads.importing import (
    CsvImportError,
    ImportReport,
    lead_import_csv,
    mapping_load,
    quiet_loggers,
)
from scoring.services import score_recompute_many


class Command(BaseCommand):
    help = "Import leads from a CSV file with a JSON mapping, then rescore them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help=_("The CSV file."))
        parser.add_argument(
            "--mapping",
            type=Path,
            required=True,
            help=_("The JSON mapping of columns to lead fields."),
        )
        parser.add_argument(
            "--limit", type=int, help=_("Import at most this many rows.")
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help=_("Rows a transaction, and leads a rescore batch."),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=_("Read and check every row, then roll it all back."),
        )

    def handle(self, *args, **options) -> None:
        if options["batch_size"] < 1 or (options["limit"] or 0) < 0:
            raise CommandError(
                _("--batch-size must be positive, --limit not negative.")
            )

        started = time.monotonic()
        # One info line per lead would drown the progress bar.
        quiet = options["verbosity"] < 2
        try:
            mapping = mapping_load(options["mapping"])
            with quiet_loggers("leads", "scoring") if quiet else nullcontext():
                report = lead_import_csv(
                    path=options["file"],
                    mapping=mapping,
                    limit=options["limit"],
                    batch_size=options["batch_size"],
                    dry_run=options["dry_run"],
                    rescore=score_recompute_many,
                    # The bar rewrites its line with carriage returns, which
                    # the command's own output wrapper would end with newlines.
                    progress_file=sys.stderr,
                )
        except CsvImportError as exc:
            raise CommandError(str(exc)) from exc

        self.print_summary(report, seconds=time.monotonic() - started)

    def print_summary(self, report: ImportReport, *, seconds: float) -> None:
        for skipped in report.skipped_rows:
            self.stdout.write(
                _("Row %(row)s skipped: %(reason)s")
                % {"row": skipped.row, "reason": skipped.reason}
            )
        unlisted = report.skipped - len(report.skipped_rows)
        if unlisted:
            self.stdout.write(
                _("... and %(count)s more skipped rows (see the log).")
                % {"count": unlisted}
            )
        for warning in report.warned_rows:
            self.stdout.write(
                self.style.WARNING(
                    _("Row %(row)s: %(reason)s")
                    % {"row": warning.row, "reason": warning.reason}
                )
            )
        unlisted = report.warned - len(report.warned_rows)
        if unlisted:
            self.stdout.write(
                _("... and %(count)s more rows with a value not imported.")
                % {"count": unlisted}
            )

        summary = _(
            "Rows read: %(rows)s in %(seconds).1f s. Created %(created)s, "
            "updated %(updated)s, unchanged %(unchanged)s, skipped %(skipped)s, "
            "with a value not imported %(warned)s. Leads rescored: %(rescored)s."
        ) % {
            "rows": report.rows,
            "seconds": seconds,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "skipped": report.skipped,
            "warned": report.warned,
            "rescored": report.rescored,
        }
        if report.dry_run:
            summary += " " + _("Dry run: nothing was saved.")
        self.stdout.write(self.style.SUCCESS(summary))
