"""Marketers run events: the event pages, check-in and attendance import.

Permissions are created first: on a fresh database Django would only create
them after the last migration.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MARKETER = (
    "campaigns.view_event",
    "campaigns.add_event",
    "campaigns.change_event",
    "campaigns.view_eventregistration",
    "campaigns.change_eventregistration",
)


def grant(apps, schema_editor):
    app_config = apps.get_app_config("campaigns")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _created = Group.objects.get_or_create(name="Marketer")
    for permission in MARKETER:
        app_label, codename = permission.split(".")
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    codenames = [permission.split(".")[1] for permission in MARKETER]
    for group in Group.objects.filter(name="Marketer"):
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="campaigns", codename__in=codenames
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_events_inbound"),
        ("scoring", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
