import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from campaigns.demo import DEMO_PASSWORD, demo_seed, sample_csv_path
from leads.importing import quiet_loggers

SITE_URL = "http://127.0.0.1:8000/"
DEMO_FORM_URL = "http://127.0.0.1:8000/static/demo/form.html"


class Command(BaseCommand):
    help = (
        "Create demo users, a demo campaign with its form, and demo leads. "
        "Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help=_("Seed even when DEBUG is off."),
        )

    def handle(self, *args, **options) -> None:
        # Demo users with a published password have no place in production.
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                _("DEBUG is off: demo data is for development. Use --force to seed.")
            )

        with quiet_loggers("leads", "scoring", "campaigns"):
            report = demo_seed(progress_file=sys.stderr)

        source = (
            _("the X Education sample") if report.from_sample else _("made-up data")
        )
        if not report.from_sample:
            self.stdout.write(
                _(
                    "The X Education sample is not at %(path)s (set "
                    "LEADCRM_SAMPLE_DATA_DIR to its folder); using made-up leads."
                )
                % {"path": sample_csv_path()}
            )
        self.stdout.write(
            _("Demo leads: %(seen)s from %(source)s, %(new)s new.")
            % {"seen": report.leads_seen, "source": source, "new": report.leads_created}
        )
        self.stdout.write(
            _("Sign in at %(url)s as admin or marketer, password %(password)s")
            % {"url": SITE_URL, "password": DEMO_PASSWORD}
        )
        self.stdout.write(_("Demo form: %(url)s") % {"url": DEMO_FORM_URL})
