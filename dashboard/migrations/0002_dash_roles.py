"""Marketers and sales managers see the dashboard; frozen as of this
migration (a later change to a role is a later migration)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ("Marketer", "Sales manager")


def grant(apps, schema_editor):
    app_config = apps.get_app_config("dashboard")
    # The historical registry has no models module: create_permissions
    # would skip the app without this.
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(
        content_type__app_label="dashboard", codename="view_dashboard"
    )
    for name in ROLES:
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(
        content_type__app_label="dashboard", codename="view_dashboard"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0001_initial"),
        ("scoring", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
