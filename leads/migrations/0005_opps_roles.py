"""Permissions of the roles on activities and opportunities.

Frozen as they are at this migration. Marketers follow opportunities (the
funnel) without their money; reps and managers work them.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SALES = (
    "leads.view_activity",
    "leads.add_activity",
    "leads.change_activity",
    "leads.view_opportunity",
    "leads.add_opportunity",
    "leads.change_opportunity",
    "leads.view_opportunity_amount",
    "leads.view_opportunitystagechange",
)
ROLES = {
    "Marketer": ("leads.view_activity", "leads.view_opportunity"),
    "Sales rep": SALES,
    "Sales manager": SALES,
}


def grant(apps, schema_editor):
    app_config = apps.get_app_config("leads")
    # create_permissions skips an app whose models module is not loaded,
    # which is always the case for the historical app registry.
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in ROLES.items():
        group, _created = Group.objects.get_or_create(name=name)
        for permission in permissions:
            app_label, codename = permission.split(".")
            group.permissions.add(
                Permission.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is None:
            continue
        codenames = [permission.split(".")[1] for permission in permissions]
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="leads", codename__in=codenames
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0004_opps_activities_opportunity_history"),
        ("scoring", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
