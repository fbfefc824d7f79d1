"""The rules the database itself enforces, and what deleting a row takes with it."""

import pytest
from django.db import IntegrityError, transaction

from accounts.tests.factories import UserFactory
from experiments.models import Experiment
from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.models import LifecycleEvent, MLModel, ModelVersion, Stage
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db


def violates_constraint(write) -> bool:
    try:
        with transaction.atomic():
            write()
    except IntegrityError:
        return True
    return False


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1_score"])
@pytest.mark.parametrize("value", [1.0001, -0.0001, 42])
def test_database_refuses_metrics_outside_zero_to_one(user, metric, value):
    model = MLModelFactory(owner=user)

    assert violates_constraint(lambda: MLModel.objects.filter(pk=model.pk).update(**{metric: value}))
    assert violates_constraint(lambda: model.versions.update(**{metric: value}))


@pytest.mark.parametrize("value", [0.0, 1.0, None])
def test_database_accepts_metric_bounds_and_null(user, value):
    model = MLModelFactory(owner=user)

    assert not violates_constraint(lambda: MLModel.objects.filter(pk=model.pk).update(accuracy=value))


def test_database_refuses_an_unknown_lifecycle_stage(user):
    model = MLModelFactory(owner=user)

    assert violates_constraint(lambda: MLModel.objects.filter(pk=model.pk).update(lifecycle="limbo"))


def test_database_refuses_two_models_with_one_name_in_any_letter_case_whoever_owns_them(user, other_user):
    MLModel.objects.create(owner=user, name="twin")

    assert violates_constraint(lambda: MLModel.objects.create(owner=other_user, name="TWIN"))


def test_a_rename_keeps_the_name_key_in_step_even_when_saving_only_the_name(user):
    model = MLModel.objects.create(owner=user, name="Before")
    model.name = "\uff21\uff46\uff54\uff45\uff52"  # full-width "After"
    model.save(update_fields=["name"])

    assert MLModel.objects.get(pk=model.pk).name_key == "after"


def test_database_refuses_two_experiments_with_one_name_for_one_owner(user):
    Experiment.objects.create(owner=user, name="sweep")

    assert violates_constraint(lambda: Experiment.objects.create(owner=user, name="sweep"))


def test_database_refuses_a_repeated_version_number_for_one_model(user):
    model = MLModelFactory(owner=user)
    other = MLModelFactory(owner=user)

    assert violates_constraint(lambda: ModelVersion.objects.create(model=model, version_number=1))
    assert not violates_constraint(lambda: ModelVersion.objects.create(model=other, version_number=2))


def test_database_refuses_version_number_zero(user):
    model = MLModelFactory(owner=user)

    assert violates_constraint(lambda: ModelVersion.objects.create(model=model, version_number=0))


def test_database_refuses_two_users_whose_emails_differ_only_in_case():
    UserFactory(username="ann", email="Ann@Example.com")

    assert violates_constraint(lambda: UserFactory(username="ann2", email="ann@example.COM"))


def test_deleting_a_user_deletes_their_models_experiments_versions_and_events(user, other_user):
    model = MLModelFactory(owner=user)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
    ExperimentFactory(owner=user)
    kept = MLModelFactory(owner=other_user)

    user.delete()

    assert list(MLModel.objects.all()) == [kept]
    assert not Experiment.objects.filter(owner_id=user.pk).exists()
    assert not ModelVersion.objects.filter(model_id=model.pk).exists()
    assert not LifecycleEvent.objects.exists()


def test_deleting_an_actor_keeps_the_events_and_versions_they_wrote(user, superuser):
    model = MLModelFactory(owner=user)
    services.lifecycle_move(model=model, actor=superuser, to_stage=Stage.STAGING)
    services.version_record(model=model, actor=superuser)

    superuser.delete()

    event = LifecycleEvent.objects.get(model=model)
    assert (event.actor, event.to_stage) == (None, Stage.STAGING)
    assert model.versions.get(version_number=2).created_by is None


def test_deleting_an_experiment_keeps_its_models_and_versions(user):
    experiment = ExperimentFactory(owner=user)
    model = MLModelFactory(owner=user, experiment=experiment)

    experiment.delete()

    model.refresh_from_db()
    assert model.experiment is None
    assert model.versions.get().experiment is None


def test_deleting_a_version_keeps_the_model(user):
    model = MLModelFactory(owner=user)
    services.version_record(model=model, actor=user)

    model.versions.get(version_number=1).delete()

    assert MLModel.objects.filter(pk=model.pk, latest_version=2).exists()


def test_deleting_a_model_deletes_its_versions_and_events(user):
    model = MLModelFactory(owner=user)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.ARCHIVED)
    model_id = model.pk

    model.delete()

    assert not ModelVersion.objects.filter(model_id=model_id).exists()
    assert not LifecycleEvent.objects.filter(model_id=model_id).exists()


def test_latest_version_counter_matches_the_versions(user):
    model = MLModelFactory(owner=user)
    for _ in range(3):
        services.version_record(model=model, actor=user)

    model.refresh_from_db()
    assert model.latest_version == 4
    assert max(model.versions.values_list("version_number", flat=True)) == 4
