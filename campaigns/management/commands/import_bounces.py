from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from campaigns.email_tracking import bounces_read_csv, email_bounce_record


class Command(BaseCommand):
    help = (
        "Record a bounce report: a UTF-8 CSV with a header line and the "
        "columns email, kind (hard or soft), reason, recipient (the "
        "X-LeadCRM-Recipient header, when known). Reading a report twice "
        "records each bounce once."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)

    def handle(self, *args, path: Path, **options):
        try:
            bounces = bounces_read_csv(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc

        recorded = sum(1 for bounce in bounces if email_bounce_record(bounce=bounce))
        self.stdout.write(
            f"{recorded} bounces recorded, {len(bounces) - recorded} matched no email."
        )
