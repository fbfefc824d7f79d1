import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from experiments import services
from experiments.models import Experiment
from experiments.tests.factories import ExperimentFactory
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db


def test_create_stores_a_trimmed_name_with_parameters_and_tags(user):
    experiment = services.experiment_create(
        owner=user, name="  sweep  ", parameters={"lr": 0.1}, tags=["fraud", "gbdt"]
    )

    assert (experiment.name, experiment.parameters, experiment.tags) == ("sweep", {"lr": 0.1}, ["fraud", "gbdt"])


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"parameters": [1, 2]}, "parameters"),
        ({"tags": "fraud"}, "tags"),
        ({"tags": ["ok", 3]}, "tags"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_create_refuses_invalid_fields(user, fields, error_field):
    with pytest.raises(ValidationError) as error:
        services.experiment_create(owner=user, **{"name": "e", **fields})

    assert error_field in error.value.message_dict
    assert not Experiment.objects.exists()


def test_create_refuses_a_duplicate_name_for_the_same_owner(user, other_user):
    services.experiment_create(owner=user, name="sweep")
    services.experiment_create(owner=other_user, name="sweep")

    with pytest.raises(ValidationError, match="already have an experiment with this name"):
        services.experiment_create(owner=user, name="sweep")


def test_owner_updates_fields(user):
    experiment = ExperimentFactory(owner=user)

    services.experiment_update(experiment=experiment, actor=user, data={"description": "new", "tags": ["x"]})

    experiment.refresh_from_db()
    assert (experiment.description, experiment.tags) == ("new", ["x"])


def test_update_refuses_the_owner_field(user, other_user):
    experiment = ExperimentFactory(owner=user)

    with pytest.raises(ValidationError) as error:
        services.experiment_update(experiment=experiment, actor=user, data={"owner": other_user})

    assert "owner" in error.value.message_dict


def test_update_refuses_renaming_onto_another_experiment_of_the_owner(user):
    ExperimentFactory(owner=user, name="taken")
    experiment = ExperimentFactory(owner=user, name="free")

    with pytest.raises(ValidationError, match="already have an experiment"):
        services.experiment_update(experiment=experiment, actor=user, data={"name": "taken"})

    assert Experiment.objects.get(pk=experiment.pk).name == "free"


def test_other_user_cannot_update_or_delete(user, other_user):
    experiment = ExperimentFactory(owner=user)

    with pytest.raises(PermissionDenied):
        services.experiment_update(experiment=experiment, actor=other_user, data={"description": "mine now"})
    with pytest.raises(PermissionDenied):
        services.experiment_delete(experiment=experiment, actor=other_user)

    assert Experiment.objects.get(pk=experiment.pk).description == experiment.description


def test_superuser_can_update_and_delete_any_experiment(user, superuser):
    experiment = ExperimentFactory(owner=user)

    services.experiment_update(experiment=experiment, actor=superuser, data={"description": "curated"})
    services.experiment_delete(experiment=experiment, actor=superuser)

    assert not Experiment.objects.exists()


def test_delete_keeps_the_models_it_produced(user):
    experiment = ExperimentFactory(owner=user)
    model = MLModelFactory(owner=user, experiment=experiment)

    services.experiment_delete(experiment=experiment, actor=user)

    model.refresh_from_db()
    assert model.experiment is None


# --- domain events ------------------------------------------------------------------------------


def published(events) -> list[tuple]:
    """(type, experiment id, actor id) of each event, in order."""
    return [(event.type, event.data["experiment"]["id"], event.actor and event.actor["id"]) for event in events]


def test_create_publishes_experiment_created(user, superuser, captured_events):
    with captured_events() as events:
        experiment = services.experiment_create(owner=user, actor=superuser, name="  sweep  ")

    assert published(events) == [("experiment.created", experiment.pk, superuser.pk)]
    assert dict(events[0].data) == {"experiment": {"id": experiment.pk, "name": "sweep"}, "owner_id": user.pk}
    assert events[0].model is None


def test_update_publishes_the_fields_it_wrote(user, captured_events):
    experiment = ExperimentFactory(owner=user)

    with captured_events() as events:
        services.experiment_update(experiment=experiment, actor=user, data={"tags": ["x"], "description": "new"})

    assert published(events) == [("experiment.updated", experiment.pk, user.pk)]
    assert events[0].data["fields"] == ["description", "tags"]


def test_delete_publishes_experiment_deleted_with_what_the_row_was(user, captured_events):
    experiment = ExperimentFactory(owner=user, name="sweep")
    experiment_id = experiment.pk

    with captured_events() as events:
        services.experiment_delete(experiment=experiment, actor=user)

    assert published(events) == [("experiment.deleted", experiment_id, user.pk)]
    assert dict(events[0].data) == {"experiment": {"id": experiment_id, "name": "sweep"}, "owner_id": user.pk}


def test_a_refused_or_rolled_back_change_publishes_nothing(user, other_user, captured_events):
    ExperimentFactory(owner=user, name="taken")
    experiment = ExperimentFactory(owner=user, name="free")
    experiment_id = experiment.pk

    with captured_events() as events:
        with pytest.raises(ValidationError):
            services.experiment_create(owner=user, name="taken")
        with pytest.raises(PermissionDenied):
            services.experiment_create(owner=user, actor=other_user, name="theirs")
        with pytest.raises(ValidationError):
            services.experiment_update(experiment=experiment, actor=user, data={"name": "taken"})
        with pytest.raises(PermissionDenied):
            services.experiment_update(experiment=experiment, actor=other_user, data={"description": "mine"})
        with pytest.raises(PermissionDenied):
            services.experiment_delete(experiment=experiment, actor=other_user)
        with pytest.raises(RuntimeError), transaction.atomic():
            services.experiment_delete(experiment=experiment, actor=user)
            raise RuntimeError("something later in the request failed")

    assert events == []
    assert Experiment.objects.filter(pk=experiment_id).exists()
