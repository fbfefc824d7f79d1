"""A model may only be linked to an experiment its actor may change: the link adds the model to that
experiment's list of models, which is the experiment owner's to say."""

import pytest
from django.core.exceptions import ValidationError

from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.tests.factories import MLModelFactory

MODELS = "/api/v1/models/"


@pytest.mark.django_db
def test_a_model_cannot_be_created_with_another_users_experiment(client_for, user, other_user):
    theirs = ExperimentFactory(owner=other_user)

    response = client_for(user).post(MODELS, {"name": "m", "experiment_id": theirs.pk}, format="json")

    assert response.status_code == 400
    assert "experiment you own" in str(response.json())
    assert not theirs.models.exists()


@pytest.mark.django_db
def test_a_model_cannot_be_moved_or_versioned_into_another_users_experiment(client_for, user, other_user):
    theirs = ExperimentFactory(owner=other_user)
    model = MLModelFactory(owner=user)
    api = client_for(user)

    update = api.patch(f"{MODELS}{model.pk}/", {"experiment_id": theirs.pk}, format="json")
    version = api.post(f"{MODELS}{model.pk}/versions/", {"experiment_id": theirs.pk}, format="json")

    assert update.status_code == version.status_code == 400
    assert not theirs.models.exists()
    assert not theirs.model_versions.exists()


@pytest.mark.django_db
def test_the_page_form_offers_and_accepts_only_the_users_own_experiments(owner_client, user, other_user):
    mine = ExperimentFactory(owner=user, name="my-sweep")
    theirs = ExperimentFactory(owner=other_user, name="their-sweep")

    form = owner_client.get("/models/new/").content.decode()
    response = owner_client.post(
        "/models/new/", {"name": "p", "framework": "other", "task_type": "other", "experiment": theirs.pk}
    )

    assert "my-sweep" in form and "their-sweep" not in form
    assert mine.pk and response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not theirs.models.exists()


@pytest.mark.django_db
def test_own_experiments_and_a_superusers_links_are_allowed(user, other_user, superuser):
    mine = ExperimentFactory(owner=user)
    theirs = ExperimentFactory(owner=other_user)

    model = services.model_create(owner=user, name="m", experiment=mine)
    linked_by_admin = services.model_update(model=model, actor=superuser, data={"experiment": theirs})

    assert linked_by_admin.experiment == theirs
    # The link a superuser made may stay when the owner edits other fields (a PUT sends it again).
    services.model_update(model=model, actor=user, data={"experiment": theirs, "description": "edited"})
    with pytest.raises(ValidationError):
        services.version_record(model=MLModelFactory(owner=user), actor=user, data={"experiment": theirs})
