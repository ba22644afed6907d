"""The hand-off's permissions for the roles: marketers see every lead, reps
and managers work the inbox and queue, managers assign and keep the rules.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Marketer": ("leads.view_all_leads",),
    "Sales rep": ("leads.work_inbox",),
    "Sales manager": (
        "leads.work_inbox",
        "leads.assign_lead",
        "leads.view_assignmentrule",
        "leads.add_assignmentrule",
        "leads.change_assignmentrule",
        "leads.delete_assignmentrule",
    ),
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
        ("leads", "0004_handoff_assignment"),
        ("scoring", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
