"""The experiments admin writes through experiments.services, like the API and the pages."""

import pytest
from django.urls import reverse

from experiments.tests.factories import ExperimentFactory
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db


def test_experiment_admin_creates_through_the_service_and_lists_produced_models(superuser_client, user):
    response = superuser_client.post(
        reverse("admin:experiments_experiment_add"),
        {
            "owner": user.pk,
            "name": "  sweep-1  ",
            "description": "",
            "parameters": '{"lr": 0.1}',
            "tags": '["a"]',
            "models-TOTAL_FORMS": "0",
            "models-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content

    experiment = user.experiments.get()
    assert experiment.name == "sweep-1"
    MLModelFactory(owner=user, experiment=experiment, name="produced-one")
    page = superuser_client.get(reverse("admin:experiments_experiment_change", args=[experiment.pk]))
    assert b"produced-one" in page.content


def test_experiment_admin_refuses_parameters_that_are_not_an_object(superuser_client, user):
    response = superuser_client.post(
        reverse("admin:experiments_experiment_add"),
        {
            "owner": user.pk,
            "name": "bad-params",
            "parameters": "[1, 2]",
            "tags": "[]",
            "models-TOTAL_FORMS": "0",
            "models-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert b"Must be a JSON object" in response.content


def test_experiment_admin_lists_experiments(superuser_client, user):
    ExperimentFactory(owner=user, name="listed-exp")

    response = superuser_client.get(reverse("admin:experiments_experiment_changelist"))

    assert b"listed-exp" in response.content


def test_logged_model_admin_lists_shows_and_soft_deletes_through_the_service(superuser_client, user):
    from experiments import logged_models
    from experiments.models import LoggedModel

    experiment = ExperimentFactory(owner=user)
    made = logged_models.logged_model_create(
        experiment=experiment, actor=user, name="model", params={"C": "1.0"}, tags={"team": "growth"}
    )

    listing = superuser_client.get(reverse("admin:experiments_loggedmodel_changelist"))
    page = superuser_client.get(reverse("admin:experiments_loggedmodel_change", args=[made.pk]))
    deleted = superuser_client.post(reverse("admin:experiments_loggedmodel_delete", args=[made.pk]), {"post": "yes"})

    assert listing.status_code == 200 and made.model_id in listing.content.decode()
    assert page.status_code == 200 and "growth" in page.content.decode()
    assert deleted.status_code == 302
    assert LoggedModel.objects.get(pk=made.pk).lifecycle_stage == "deleted"
