"""Indexes for MLflow's searches: registered models page by name, model versions newest first (the
MLflow API's default orders), so a page reads its rows in order instead of sorting the table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("mlmodels", "0013_version_run")]

    operations = [
        migrations.AddIndex(
            model_name="mlmodel",
            index=models.Index(fields=["name"], name="mlmodel_name_idx"),
        ),
        migrations.AddIndex(
            model_name="modelversion",
            index=models.Index(fields=["created_at"], name="modelversion_created_at_idx"),
        ),
    ]
