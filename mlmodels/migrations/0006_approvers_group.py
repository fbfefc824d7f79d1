"""The approvers group, holding mlmodels.approve_production (DESIGN.md "Roles"); assigned in the admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APPROVERS = "approvers"


def create_approvers(apps, schema_editor):
    # Permissions are made after all migrations ran (post_migrate); this one is needed now.
    app_config = apps.get_app_config("mlmodels")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    approve = Permission.objects.get(content_type__app_label="mlmodels", codename="approve_production")
    group, _ = Group.objects.get_or_create(name=APPROVERS)
    group.permissions.add(approve)


def remove_approvers(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=APPROVERS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mlmodels", "0005_approve_production_permission"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_approvers, remove_approvers)]
