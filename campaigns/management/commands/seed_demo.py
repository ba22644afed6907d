import sys
from contextlib import redirect_stdout
from io import StringIO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from campaigns.demo import (
    DEMO_PASSWORD,
    EVENT_FORM_KEY,
    SALES_TEAM,
    demo_seed,
    sample_csv_path,
)
from leads.importing import quiet_loggers

SITE_URL = "http://127.0.0.1:8000/"
DEMO_FORM_URL = "http://127.0.0.1:8000/static/demo/form.html"
EVENT_FORM_URL = f"http://127.0.0.1:8000/f/{EVENT_FORM_KEY}/"


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

        # The reps' notifications of the demo assignments are in the app;
        # the console email backend would print each of them here too.
        with (
            quiet_loggers("leads", "scoring", "campaigns"),
            redirect_stdout(StringIO()),
        ):
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
        if report.leads_assigned:
            self.stdout.write(
                _("%(count)s demo MQLs assigned to the reps of team %(team)s.")
                % {"count": report.leads_assigned, "team": SALES_TEAM}
            )
        self.stdout.write(
            _("Sign in at %(url)s with password %(password)s as:")
            % {"url": SITE_URL, "password": DEMO_PASSWORD}
        )
        for username, role in (
            ("admin", _("administrator, Django admin")),
            ("marketer", _("Marketer")),
            ("manager", _("Sales manager of team %(team)s") % {"team": SALES_TEAM}),
            ("rep", _("Sales rep of team %(team)s") % {"team": SALES_TEAM}),
            ("rep2", _("Sales rep of team %(team)s") % {"team": SALES_TEAM}),
        ):
            self.stdout.write(f"  {username:<9} {role}")
        self.stdout.write(_("Demo form: %(url)s") % {"url": DEMO_FORM_URL})
        if report.event is not None:
            self.stdout.write(
                _("Webinar %(when)s, registration form: %(url)s")
                % {
                    "when": formats.date_format(
                        timezone.localtime(report.event.starts_at),
                        "SHORT_DATETIME_FORMAT",
                    ),
                    "url": EVENT_FORM_URL,
                }
            )
