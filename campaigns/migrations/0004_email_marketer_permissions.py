"""Marketers write, test and send email campaigns and keep segments."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSIONS = (
    "campaigns.view_segment",
    "campaigns.add_segment",
    "campaigns.change_segment",
    "campaigns.view_emailcampaign",
    "campaigns.add_emailcampaign",
    "campaigns.change_emailcampaign",
    "campaigns.send_emailcampaign",
    "campaigns.view_emailrecipient",
)


def grant(apps, schema_editor):
    app_config = apps.get_app_config("campaigns")
    # create_permissions skips an app whose models module is not loaded,
    # which is always the case for the historical app registry.
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _created = Group.objects.get_or_create(name="Marketer")
    for permission in PERMISSIONS:
        app_label, codename = permission.split(".")
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="Marketer").first()
    if group is None:
        return
    codenames = [permission.split(".")[1] for permission in PERMISSIONS]
    group.permissions.remove(
        *Permission.objects.filter(
            content_type__app_label="campaigns", codename__in=codenames
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_email_segments_campaigns"),
        ("scoring", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
