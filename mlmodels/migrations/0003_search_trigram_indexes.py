"""Trigram indexes for the model list's search on PostgreSQL.

``search`` matches words anywhere in the name or description (``UPPER(col) LIKE UPPER('%word%')``,
what Django's ``icontains`` sends), which no B-tree can answer: at a million models one search
scanned the table (0.4 s). GIN indexes of the trigrams of the same ``UPPER(col)`` expressions let
PostgreSQL find the matching rows directly. SQLite has no such index; it keeps scanning, which is
fine at the sizes SQLite serves.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = (("mlmodel_name_trgm_idx", "name"), ("mlmodel_description_trgm_idx", "description"))


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("mlmodels", "MLModel")._meta.db_table)
    for index, column in INDEXES:
        expression = f"UPPER({schema_editor.quote_name(column)}) gin_trgm_ops"
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING gin ({expression})")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {index}")


class Migration(migrations.Migration):
    dependencies = [("mlmodels", "0002_file_key_registry_written")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
