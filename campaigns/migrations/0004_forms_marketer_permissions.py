"""Marketers run campaigns, build forms and review the spam log.

Permissions are created first: on a fresh database Django would only create
them after the last migration.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MARKETER = (
    "campaigns.view_campaign",
    "campaigns.add_campaign",
    "campaigns.change_campaign",
    "campaigns.view_webform",
    "campaigns.add_webform",
    "campaigns.change_webform",
    "campaigns.view_formfield",
    "campaigns.add_formfield",
    "campaigns.change_formfield",
    "campaigns.delete_formfield",
    "campaigns.view_submission",
    "campaigns.change_submission",
    "campaigns.view_consentrecord",
    "campaigns.view_consenttext",
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
    for permission in MARKETER:
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
    codenames = [permission.split(".")[1] for permission in MARKETER]
    group.permissions.remove(
        *Permission.objects.filter(
            content_type__app_label="campaigns", codename__in=codenames
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_forms_builder_spam_consent"),
        ("scoring", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
