"""People and leads for the sales hand-off tests."""

import pytest
from django.utils import timezone

from leads.models import Lead, Level, Team, TeamMember

REP_PERMS = (
    "leads.view_lead",
    "leads.move_lead",
    "leads.change_bant",
    "leads.work_inbox",
)
MANAGER_PERMS = (*REP_PERMS, "leads.assign_lead")


def make_team(make_user, name: str, reps=("an", "binh"), *, capacity=50, **fields):
    """A team with a manager ("<name>-boss") and reps; returns the team and
    the rep users in order."""
    manager = make_user(f"{name}-boss", perms=MANAGER_PERMS)
    team = Team.objects.create(name=name, manager=manager, **fields)
    users = []
    for username in reps:
        user = make_user(username, perms=REP_PERMS)
        user.email = f"{username}@example.vn"
        user.save(update_fields=["email"])
        TeamMember.objects.create(team=team, user=user, capacity=capacity)
        users.append(user)
    return team, users


def make_mql(make_lead, email: str, **fields) -> Lead:
    """A lead at MQL, as scoring leaves it, not yet assigned."""
    lead = make_lead(email=email, **fields)
    Lead.objects.filter(pk=lead.pk).update(level=Level.MQL, mql_at=timezone.now())
    lead.refresh_from_db()
    return lead


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """These tests make many users; a slow hash buys nothing here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
