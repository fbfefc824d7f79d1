import io

import pytest
from django.urls import reverse

from accounts.models import User
from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.models import LifecycleEvent, MLModel, Stage
from mlmodels.storage import artifact_storage
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:mlmodels_mlmodel_changelist")


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def add_model_form(**fields) -> dict:
    """The admin's add-model form as a browser posts it (no inline rows)."""
    return {
        "description": "",
        "framework": "onnx",
        "task_type": "regression",
        "hyperparameters": "{}",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        **fields,
    }


def run_action(admin_client, action: str, *models: MLModel):
    return admin_client.post(CHANGELIST, {"action": action, "_selected_action": [m.pk for m in models]}, follow=True)


def test_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_changelist_shows_models_with_a_query_count_independent_of_rows(
    admin_client, user, django_assert_max_num_queries
):
    for _ in range(30):
        MLModelFactory(owner=user)

    # session, user, count, filtered count, page of models with owners, owner filter choices,
    # date hierarchy, plus a few for the admin's own bookkeeping.
    with django_assert_max_num_queries(12):
        response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert response.content.count(b'class="field-name"') == 30


@pytest.mark.parametrize(
    "query",
    ["framework__exact=sklearn", "task_type__exact=classification", "lifecycle__exact=staging", "q=model"],
)
def test_changelist_filters_and_search_work(admin_client, user, query):
    MLModelFactory(owner=user)

    assert admin_client.get(f"{CHANGELIST}?{query}").status_code == 200


def test_change_page_shows_versions_and_events_read_only(admin_client, user):
    model = MLModelFactory(owner=user)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING, comment="looks good")

    response = admin_client.get(reverse("admin:mlmodels_mlmodel_change", args=[model.pk]))

    assert response.status_code == 200
    assert b"looks good" in response.content
    assert b'name="versions-0-version_number"' not in response.content
    assert b'name="lifecycle"' not in response.content


def test_action_moves_the_lifecycle_through_the_service_with_an_audit_event(admin_client, superuser, user):
    model = MLModelFactory(owner=user)

    response = run_action(admin_client, "move_to_staging", model)

    assert b"Moved 1 model(s) to staging" in response.content
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.STAGING
    event = LifecycleEvent.objects.get(model=model)
    assert (event.from_stage, event.to_stage, event.actor) == ("development", "staging", superuser)


def test_action_reports_a_refused_move_and_changes_nothing(admin_client, user):
    model = MLModelFactory(owner=user, name="no-file")
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)

    response = run_action(admin_client, "move_to_production", model)

    assert b"Could not move no-file: A model without an artifact file cannot go to production" in response.content
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.STAGING
    assert LifecycleEvent.objects.filter(model=model).count() == 1


def test_adding_a_model_in_the_admin_records_version_one_with_the_uploaded_file(admin_client, user):
    artifact = io.BytesIO(b"admin weights")
    artifact.name = "weights.bin"

    response = admin_client.post(
        reverse("admin:mlmodels_mlmodel_add"),
        add_model_form(owner=user.pk, name="from-admin", accuracy="0.5", artifact=artifact),
    )

    assert response.status_code == 302, response.content
    model = MLModel.objects.get(name="from-admin")
    assert (model.owner, model.latest_version, model.lifecycle) == (user, 1, Stage.DEVELOPMENT)
    assert model.file == f"users/{user.pk}/models/{model.pk}/v1/weights.bin"
    assert artifact_storage().exists(model.file)


def test_editing_metrics_in_the_admin_records_a_new_version(admin_client, user):
    model = MLModelFactory(owner=user, accuracy=0.5)
    url = reverse("admin:mlmodels_mlmodel_change", args=[model.pk])

    response = admin_client.post(
        url,
        {
            "name": model.name,
            "description": model.description,
            "framework": model.framework,
            "task_type": model.task_type,
            "accuracy": "0.75",
            "precision": model.precision,
            "recall": model.recall,
            "f1_score": model.f1_score,
            "hyperparameters": '{"max_depth": 4}',
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "1",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content
    model.refresh_from_db()
    assert (model.accuracy, model.latest_version) == (0.75, 2)
    assert model.versions.get(version_number=2).note == "Changed in the admin"


def test_admin_form_refuses_a_metric_above_one(admin_client, user):
    response = admin_client.post(
        reverse("admin:mlmodels_mlmodel_add"),
        add_model_form(owner=user.pk, name="bad", accuracy="1.5"),
    )

    assert response.status_code == 200
    assert b"less than or equal to 1" in response.content
    assert not MLModel.objects.exists()


def test_deleting_in_the_admin_removes_the_model_and_its_files_after_commit(
    admin_client, user, django_capture_on_commit_callbacks
):
    model = MLModelFactory(owner=user)
    artifact = io.BytesIO(b"bye")
    artifact.name = "bye.bin"
    key = services.model_attach_file(model=model, actor=user, file=artifact).file

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:mlmodels_mlmodel_delete", args=[model.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not MLModel.objects.filter(name=model.name).exists()
    assert not artifact_storage().exists(key)


@pytest.mark.parametrize("name", ["modelversion", "lifecycleevent"])
def test_versions_and_events_are_view_only_in_the_admin(admin_client, user, name):
    model = MLModelFactory(owner=user)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.ARCHIVED)

    assert admin_client.get(reverse(f"admin:mlmodels_{name}_changelist")).status_code == 200
    assert admin_client.get(reverse(f"admin:mlmodels_{name}_add")).status_code == 403


def test_experiment_admin_creates_through_the_service_and_lists_produced_models(admin_client, user):
    response = admin_client.post(
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
    page = admin_client.get(reverse("admin:experiments_experiment_change", args=[experiment.pk]))
    assert b"produced-one" in page.content


def test_experiment_admin_refuses_parameters_that_are_not_an_object(admin_client, user):
    response = admin_client.post(
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


def test_user_admin_adds_a_user_with_an_email(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "usable_password": "true",
            "password1": "a-strong-passphrase-123",
            "password2": "a-strong-passphrase-123",
        },
    )

    assert response.status_code == 302, response.content
    assert User.objects.get(username="newbie").email == "newbie@example.com"


def test_experiment_admin_lists_experiments(admin_client, user):
    ExperimentFactory(owner=user, name="listed-exp")

    response = admin_client.get(reverse("admin:experiments_experiment_changelist"))

    assert b"listed-exp" in response.content
