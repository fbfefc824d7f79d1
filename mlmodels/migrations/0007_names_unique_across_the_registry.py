"""Model names become unique across the registry (DESIGN.md "Tags, aliases and names"), compared after
NFKC and case folding. Names that several owners used are kept by the oldest model; each later one is
renamed to "<name>-<owner username>" (with a number if that is taken too), and every rename is printed."""

import unicodedata

from django.db import migrations, models

MAX_NAME = 200


def key_of(name: str) -> str:
    # registry.validators.name_key as of this migration (a migration keeps its own copy of the rule).
    return unicodedata.normalize("NFKC", (name or "").strip()).casefold()


def renamed(name: str, owner: str, taken: set[str]) -> str:
    suffix = f"-{owner}"
    number = 1
    while True:
        candidate = name[: MAX_NAME - len(suffix)] + suffix
        if key_of(candidate) not in taken:
            return candidate
        number += 1
        suffix = f"-{owner}-{number}"


def rename_duplicates(apps, schema_editor):
    MLModel = apps.get_model("mlmodels", "MLModel")
    models_by_age = MLModel.objects.select_related("owner").order_by("created_at", "pk")
    taken = {key_of(name) for name in MLModel.objects.values_list("name", flat=True)}
    seen: set[str] = set()
    for model in models_by_age.iterator():
        key = key_of(model.name)
        if key in seen:
            old = model.name
            model.name = renamed(old, model.owner.username, taken)
            key = key_of(model.name)
            taken.add(key)
            print(f"\n  Renamed model #{model.pk} of {model.owner.username}: “{old}” → “{model.name}” (taken)", end="")
        seen.add(key)
        model.name_key = key
        model.save(update_fields=["name", "name_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("mlmodels", "0006_approvers_group"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="mlmodel", name="mlmodel_unique_name_per_owner"),
        migrations.AddField(
            model_name="mlmodel",
            name="name_key",
            field=models.CharField(editable=False, max_length=600, null=True),
        ),
        # Renamed names stay renamed when this migration is reversed.
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="mlmodel",
            name="name_key",
            field=models.CharField(editable=False, max_length=600),
        ),
        migrations.AddConstraint(
            model_name="mlmodel",
            constraint=models.UniqueConstraint(
                fields=("name_key",),
                name="mlmodel_unique_name",
                violation_error_code="duplicate_name",
                violation_error_message="Another model has this name; model names are unique across the registry.",
            ),
        ),
    ]
