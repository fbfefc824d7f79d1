"""Migrations that change existing data, run on rows made at the state before them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.tests.factories import UserFactory

BEFORE_UNIQUE_NAMES = [("mlmodels", "0006_approvers_group")]
UNIQUE_NAMES = [("mlmodels", "0007_names_unique_across_the_registry")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_migration():
    """``at_migration(targets)``: the database migrated there, and the historical models' apps; the
    database is migrated forward to the latest state again afterwards, for the tests that follow."""
    yield migrate
    executor = MigrationExecutor(connection)
    migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_names_become_unique_across_the_registry_and_later_duplicates_are_renamed_after_their_owner(
    at_migration, capsys
):
    MLModel = at_migration(BEFORE_UNIQUE_NAMES).get_model("mlmodels", "MLModel")
    # Only mlmodels went back: the accounts tables are the current ones, and so is their factory.
    ada, bob, cy = (UserFactory(username=name).pk for name in ("ada", "bob", "cy"))
    first = MLModel.objects.create(owner_id=ada, name="churn")
    second = MLModel.objects.create(owner_id=bob, name="Churn")
    third = MLModel.objects.create(owner_id=cy, name="CHURN")
    # Already someone's name: bob's rename takes a number instead.
    existing = MLModel.objects.create(owner_id=ada, name="churn-bob")
    untouched = MLModel.objects.create(owner_id=bob, name="fraud")

    apps = at_migration(UNIQUE_NAMES)

    names = dict(apps.get_model("mlmodels", "MLModel").objects.values_list("pk", "name"))
    assert names == {
        first.pk: "churn",
        second.pk: "Churn-bob-2",
        third.pk: "CHURN-cy",
        existing.pk: "churn-bob",
        untouched.pk: "fraud",
    }
    keys = apps.get_model("mlmodels", "MLModel").objects.values_list("name_key", flat=True)
    assert sorted(keys) == ["churn", "churn-bob", "churn-bob-2", "churn-cy", "fraud"]
    report = capsys.readouterr().out
    assert f"Renamed model #{second.pk} of bob: “Churn” → “Churn-bob-2” (taken)" in report
    assert f"Renamed model #{third.pk} of cy: “CHURN” → “CHURN-cy” (taken)" in report
    assert "fraud" not in report


BEFORE_SCANS = [("mlmodels", "0010_approval_requests")]
SCANS = [("mlmodels", "0011_artifact_scans")]


@pytest.mark.django_db(transaction=True)
def test_versions_stored_before_scans_existed_wait_for_a_scan_and_those_without_a_file_need_none(at_migration):
    apps = at_migration(BEFORE_SCANS)
    MLModel, ModelVersion = apps.get_model("mlmodels", "MLModel"), apps.get_model("mlmodels", "ModelVersion")
    owner = UserFactory(username="ada").pk
    model = MLModel.objects.create(owner_id=owner, name="churn", name_key="churn")
    stored = ModelVersion.objects.create(model=model, version_number=1, file="users/1/models/1/v1/m.pkl")
    bare = ModelVersion.objects.create(model=model, version_number=2)

    statuses = dict(at_migration(SCANS).get_model("mlmodels", "ModelVersion").objects.values_list("pk", "scan_status"))

    assert statuses == {stored.pk: "pending", bare.pk: ""}
