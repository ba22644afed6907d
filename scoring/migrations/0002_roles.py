"""The CRM's roles as groups, each with the permissions its pages need.

The roles are frozen here as they were at this migration; a later change to
a role is a later migration. Permissions are created first: on a fresh
database Django would only create them after the last migration.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SALES_REP = (
    "leads.view_lead",
    "leads.move_lead",
    "leads.view_bant",
    "leads.add_bant",
    "leads.change_bant",
)
ROLES = {
    "Marketer": (
        "leads.view_lead",
        "leads.add_lead",
        "leads.change_lead",
        "leads.move_lead",
        "scoring.view_ruleset",
        "scoring.add_ruleset",
        "scoring.change_ruleset",
        "scoring.view_engagementrule",
        "scoring.add_engagementrule",
        "scoring.change_engagementrule",
        "scoring.view_fitrule",
        "scoring.add_fitrule",
        "scoring.change_fitrule",
        "scoring.view_rescorejob",
    ),
    "Sales rep": SALES_REP,
    "Sales manager": (*SALES_REP, "leads.add_lead", "leads.change_lead"),
}


def create_roles(apps, schema_editor):
    for label in ("leads", "scoring"):
        app_config = apps.get_app_config(label)
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


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0001_initial"),
        ("leads", "0002_alter_lead_options_interaction_subject_and_more"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
