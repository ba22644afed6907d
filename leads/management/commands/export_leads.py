import os
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from leads.exporting import lead_export_csv, lead_export_queryset
from leads.models import Level, Temperature


class Command(BaseCommand):
    help = "Write leads as UTF-8 CSV to standard output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--level", choices=Level.values)
        parser.add_argument("--temperature", choices=Temperature.values)
        parser.add_argument(
            "--user",
            metavar="USERNAME",
            help=_("Export only the leads this user may see; without it, all leads."),
        )
        parser.add_argument(
            "--bom",
            action="store_true",
            help=_("Start with a byte-order mark, so Excel reads Vietnamese right."),
        )

    def handle(self, *args, **options) -> None:
        user = None
        if options["user"]:
            user_model = get_user_model()
            lookup = {user_model.USERNAME_FIELD: options["user"]}
            user = user_model.objects.filter(**lookup).first()
            if user is None:
                raise CommandError(
                    _('No user named "%(name)s".') % {"name": options["user"]}
                )

        # A terminal or a pipe in a C locale would otherwise get another
        # encoding; the file is UTF-8 wherever it goes.
        if options.get("stdout") is None and hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(encoding="utf-8")

        leads = lead_export_queryset(
            user=user, level=options["level"], temperature=options["temperature"]
        )
        try:
            if options["bom"]:
                self.stdout.write("\ufeff", ending="")
            lead_export_csv(leads=leads, out=self.stdout)
        except BrokenPipeError:
            # The reader (head, say) stopped early, which is no error of the
            # export; pointing stdout at /dev/null keeps the interpreter
            # from failing again when it flushes at exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
