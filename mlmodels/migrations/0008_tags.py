"""Tags on models and versions: a JSON object of key → string value each. On PostgreSQL a GIN index
(jsonb_path_ops, which answers @>) serves the model list's ``?tag=key:value`` filter
(``MLModelQuerySet.tagged``); SQLite scans, which is fine at the sizes it serves."""

import registry.fields
import registry.validators
from django.db import migrations

INDEX = "mlmodel_tags_gin_idx"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("mlmodels", "MLModel")._meta.db_table)
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON {table} USING gin (tags jsonb_path_ops)")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("mlmodels", "0007_names_unique_across_the_registry"),
    ]

    operations = [
        migrations.AddField(
            model_name="mlmodel",
            name="tags",
            field=registry.fields.JSONDocumentField(
                blank=True,
                decoder=registry.fields.SurrogateReplacingDecoder,
                default=dict,
                validators=[registry.validators.validate_tags],
            ),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="tags",
            field=registry.fields.JSONDocumentField(
                blank=True,
                decoder=registry.fields.SurrogateReplacingDecoder,
                default=dict,
                validators=[registry.validators.validate_tags],
            ),
        ),
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
