"""Invite a person: an account in a role, optionally in a team, and an
email with a link to choose a password."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from leads.invitations import invitation_send
from leads.models import Team, TeamMember

ROLES = ("Marketer", "Sales rep", "Sales manager")


class Command(BaseCommand):
    help = "Create a user in a role (and team) and email them an invitation."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--team", help="Team name; created when new.")
        parser.add_argument("--name", default="", help="First and last name.")
        parser.add_argument("--capacity", type=int, default=50)
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            help="Language of the email; by default the active one (LANGUAGE_CODE "
            "when run from manage.py).",
        )
        parser.add_argument("--no-email", action="store_true")

    def handle(self, *args, **options):
        email = options["email"].strip().lower()
        try:
            validate_email(email)
        except ValidationError as exc:
            raise CommandError(f"Not an email address: {email}") from exc
        if options["capacity"] < 1:
            raise CommandError("--capacity must be at least 1.")

        user = self._invite(email, options)

        if not options["no_email"] and not self._send(user, options["language"]):
            self.stderr.write(
                f"No invitation email was sent: user {user.pk} is inactive "
                "or has no valid email address."
            )
        self.stdout.write(self.style.SUCCESS(f"Invited user {user.pk} ({email})."))

    def _send(self, user, language: str | None) -> bool:
        try:
            return invitation_send(user=user, language=language)
        except OSError as exc:
            raise CommandError(
                f"User {user.pk} is set up, but the invitation email could not "
                "be sent. Run the command again to send it."
            ) from exc

    @transaction.atomic
    def _invite(self, email: str, options):
        User = get_user_model()
        first, _sep, last = options["name"].partition(" ")
        user, created = User.objects.get_or_create(
            username=email,
            defaults={"email": email, "first_name": first, "last_name": last},
        )
        if created:
            # No password until the invitation's link sets one: until then
            # the hand-off gives this person no leads (see next_rep).
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=options["role"]))

        if options["team"]:
            team, _created = Team.objects.get_or_create(name=options["team"])
            if options["role"] == "Sales manager":
                team.manager = user
                team.save(update_fields=["manager"])
            else:
                TeamMember.objects.update_or_create(
                    user=user,
                    defaults={"team": team, "capacity": options["capacity"]},
                )
        return user
