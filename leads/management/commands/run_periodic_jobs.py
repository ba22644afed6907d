from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _


class Command(BaseCommand):
    help = (
        "Run beat's periodic jobs once, in this process: the hand-off sweep, "
        "reminders, no-shows, the sweepers, the dashboard refresh. For `make run`, "
        "which has no beat."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "names",
            nargs="*",
            metavar="JOB",
            help=_("Only these jobs (names as in CELERY_BEAT_SCHEDULE)."),
        )

    def handle(self, *args, **options) -> None:
        schedule = settings.CELERY_BEAT_SCHEDULE
        unknown = set(options["names"]) - set(schedule)
        if unknown:
            raise CommandError(
                _("Unknown job: %(names)s. Known: %(known)s.")
                % {"names": ", ".join(sorted(unknown)), "known": ", ".join(schedule)}
            )

        failed = []
        for name, entry in schedule.items():
            if options["names"] and name not in options["names"]:
                continue
            task = import_string(entry["task"])
            # apply() runs the task here and now, whatever the broker settings;
            # throw=False: a failing job (eager tasks propagate by default)
            # must not keep the jobs after it from running.
            result = task.apply(
                args=entry.get("args", ()),
                kwargs=entry.get("kwargs", {}),
                throw=False,
            )
            if result.failed():
                failed.append(name)
                self.stderr.write(
                    _("%(name)s failed: %(error)s")
                    % {"name": name, "error": result.result}
                )
                continue
            self.stdout.write(
                _("%(name)s: %(result)s") % {"name": name, "result": result.result}
            )
        if failed:
            raise CommandError(_("Failed: %(names)s.") % {"names": ", ".join(failed)})
