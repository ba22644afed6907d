from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from scoring.rulesets import preset_load, rule_set_activate, rule_set_from_preset
from scoring.services import rules_preview


class Command(BaseCommand):
    help = _(
        "Load a scoring preset as a draft rule set, preview it over the existing "
        "leads and, with --activate, put it in force."
    )

    def add_arguments(self, parser):
        parser.add_argument("preset", help=_("A name in scoring/presets or a path."))
        parser.add_argument("--activate", action="store_true")

    def handle(self, *args, preset: str, activate: bool, **options):
        try:
            draft = rule_set_from_preset(preset=preset_load(preset))
        except (OSError, ValueError, ValidationError) as exc:
            raise CommandError(str(exc)) from exc

        preview = rules_preview(rules=draft.to_rules())
        self.stdout.write(_("Draft rule set v%(v)s: %(name)s") % {
            "v": draft.pk, "name": draft.name,
        })  # fmt: skip
        self.stdout.write(
            _("Leads: %(n)s, would rise: %(up)s, would no longer qualify: %(down)s")
            % {
                "n": preview.leads,
                "up": preview.would_rise,
                "down": preview.would_no_longer_qualify,
            }
        )
        for level in ("iql", "mql", "sql"):
            rate = preview.conversion_rate(level)
            counts = preview.by_level.get(level, {})
            converted = (
                _("converted %(rate).1f %%") % {"rate": rate * 100}
                if rate is not None
                else _("no known outcomes")
            )
            self.stdout.write(
                "  "
                + _("%(level)s: leads %(n)s, %(converted)s")
                % {
                    "level": level.upper(),
                    "n": counts.get("leads", 0),
                    "converted": converted,
                }
            )
        if preview.auc is not None:
            self.stdout.write(
                _("ROC AUC against %(n)s known outcomes: %(auc).3f")
                % {"n": preview.with_outcome, "auc": preview.auc}
            )

        if activate:
            job = rule_set_activate(rule_set=draft)
            job.refresh_from_db()
            self.stdout.write(
                _("Activated; rescore job %(job)s is %(status)s.")
                % {"job": job.pk, "status": job.get_status_display()}
            )
