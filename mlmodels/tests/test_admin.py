import io
import re

import pytest
from django.urls import reverse

from mlmodels import services
from mlmodels.models import LifecycleEvent, MLModel, ProtectedAlias, Stage
from mlmodels.storage import artifact_storage
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:mlmodels_mlmodel_changelist")


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
        "alias_events-TOTAL_FORMS": "0",
        "alias_events-INITIAL_FORMS": "0",
        **fields,
    }


def run_action(client, action: str, *models: MLModel):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [m.pk for m in models]}, follow=True)


def test_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_changelist_shows_models_with_a_query_count_independent_of_rows(
    superuser_client, user, django_assert_max_num_queries
):
    for _ in range(30):
        MLModelFactory(owner=user)

    # session, user, count, filtered count, page of models with owners, owner filter choices,
    # date hierarchy, plus a few for the admin's own bookkeeping.
    with django_assert_max_num_queries(12):
        response = superuser_client.get(CHANGELIST)

    assert response.status_code == 200
    assert response.content.count(b'class="field-name"') == 30


def shown_names(response) -> list[str]:
    """The names in the changelist's rows, sorted (each row's name links to its change page)."""
    assert response.status_code == 200
    return sorted(re.findall(r'<th class="field-name"><a href="[^"]*">([^<]*)</a>', response.content.decode()))


@pytest.fixture
def catalogue(user, other_user):
    MLModelFactory(owner=user, name="alpha", framework="sklearn", task_type="classification", description="")
    MLModelFactory(owner=user, name="beta", framework="pytorch", task_type="regression", description="fraud scorer")
    gamma = MLModelFactory(owner=other_user, name="gamma", framework="sklearn", task_type="regression", description="")
    services.lifecycle_move(model=gamma, actor=other_user, to_stage=Stage.STAGING)


def test_changelist_without_a_filter_shows_every_model(superuser_client, catalogue):
    assert shown_names(superuser_client.get(CHANGELIST)) == ["alpha", "beta", "gamma"]


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("framework__exact=sklearn", ["alpha", "gamma"]),
        ("task_type__exact=classification", ["alpha"]),
        ("lifecycle__exact=staging", ["gamma"]),
        ("framework__exact=sklearn&task_type__exact=regression", ["gamma"]),
        ("owner__id__exact={other_user}", ["gamma"]),
        ("q=fraud", ["beta"]),
        ("q=someone-else", ["gamma"]),
        ("q=nothing-matches", []),
    ],
)
def test_changelist_filters_and_search_show_only_the_matching_models(
    superuser_client, catalogue, other_user, query, shown
):
    response = superuser_client.get(f"{CHANGELIST}?{query.format(other_user=other_user.pk)}")

    assert shown_names(response) == shown


def test_change_page_shows_versions_and_events_read_only(superuser_client, user):
    model = MLModelFactory(owner=user)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING, comment="looks good")

    response = superuser_client.get(reverse("admin:mlmodels_mlmodel_change", args=[model.pk]))

    assert response.status_code == 200
    assert b"looks good" in response.content
    assert b'name="versions-0-version_number"' not in response.content
    assert b'name="lifecycle"' not in response.content


def test_action_moves_the_lifecycle_through_the_service_with_an_audit_event(superuser_client, superuser, user):
    model = MLModelFactory(owner=user)

    response = run_action(superuser_client, "move_to_staging", model)

    assert b"Moved 1 model(s) to staging" in response.content
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.STAGING
    event = LifecycleEvent.objects.get(model=model)
    assert (event.from_stage, event.to_stage, event.actor) == ("development", "staging", superuser)


def test_action_reports_a_refused_move_and_changes_nothing(superuser_client, user):
    model = MLModelFactory(owner=user, name="no-file")
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)

    response = run_action(superuser_client, "move_to_production", model)

    assert b"Could not move no-file: A model without an artifact file cannot go to production" in response.content
    assert MLModel.objects.get(pk=model.pk).lifecycle == Stage.STAGING
    assert LifecycleEvent.objects.filter(model=model).count() == 1


def test_adding_a_model_in_the_admin_records_version_one_with_the_uploaded_file(superuser_client, user):
    artifact = io.BytesIO(b"admin weights")
    artifact.name = "weights.bin"

    response = superuser_client.post(
        reverse("admin:mlmodels_mlmodel_add"),
        add_model_form(owner=user.pk, name="from-admin", accuracy="0.5", artifact=artifact),
    )

    assert response.status_code == 302, response.content
    model = MLModel.objects.get(name="from-admin")
    assert (model.owner, model.latest_version, model.lifecycle) == (user, 1, Stage.DEVELOPMENT)
    assert model.file == f"users/{user.pk}/models/{model.pk}/v1/weights.bin"
    assert artifact_storage().exists(model.file)


def test_editing_metrics_in_the_admin_records_a_new_version(superuser_client, user):
    model = MLModelFactory(owner=user, accuracy=0.5)
    url = reverse("admin:mlmodels_mlmodel_change", args=[model.pk])

    response = superuser_client.post(
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
            "alias_events-TOTAL_FORMS": "0",
            "alias_events-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content
    model.refresh_from_db()
    assert (model.accuracy, model.latest_version) == (0.75, 2)
    assert model.versions.get(version_number=2).note == "Changed in the admin"


def test_admin_form_refuses_a_metric_above_one(superuser_client, user):
    response = superuser_client.post(
        reverse("admin:mlmodels_mlmodel_add"),
        add_model_form(owner=user.pk, name="bad", accuracy="1.5"),
    )

    assert response.status_code == 200
    assert b"less than or equal to 1" in response.content
    assert not MLModel.objects.exists()


def test_deleting_in_the_admin_removes_the_model_and_its_files_after_commit(
    superuser_client, user, django_capture_on_commit_callbacks
):
    model = MLModelFactory(owner=user)
    artifact = io.BytesIO(b"bye")
    artifact.name = "bye.bin"
    key = services.model_attach_file(model=model, actor=user, file=artifact).file

    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(reverse("admin:mlmodels_mlmodel_delete", args=[model.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not MLModel.objects.filter(name=model.name).exists()
    assert not artifact_storage().exists(key)


@pytest.mark.parametrize("name", ["modelversion", "lifecycleevent"])
def test_versions_and_events_are_view_only_in_the_admin(superuser_client, user, name):
    model = MLModelFactory(owner=user)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.ARCHIVED)

    assert superuser_client.get(reverse(f"admin:mlmodels_{name}_changelist")).status_code == 200
    assert superuser_client.get(reverse(f"admin:mlmodels_{name}_add")).status_code == 403


def test_the_admin_refuses_a_taken_name_with_its_owner_and_keeps_a_models_own(superuser_client, user, other_user):
    taken = MLModelFactory(owner=user, name="churn")
    mine = MLModelFactory(owner=other_user, name="fraud")

    added = superuser_client.post(
        reverse("admin:mlmodels_mlmodel_add"), add_model_form(owner=other_user.pk, name="Churn")
    )
    kept = superuser_client.post(
        reverse("admin:mlmodels_mlmodel_change", args=[mine.pk]), add_model_form(owner=other_user.pk, name="FRAUD")
    )

    assert added.status_code == 200
    assert f"The name “churn” is taken by {user.username}&#x27;s model (#{taken.pk})" in added.content.decode()
    assert MLModel.objects.count() == 2
    assert kept.status_code == 302
    mine.refresh_from_db()
    assert mine.name == "FRAUD"


def test_only_superusers_list_the_protected_aliases_in_the_admin(superuser_client, client, user):
    user.is_staff = True
    user.save()
    client.force_login(user)

    added = superuser_client.post(reverse("admin:mlmodels_protectedalias_add"), {"name": "champion"})

    assert added.status_code == 302
    assert ProtectedAlias.objects.filter(name="champion").exists()
    assert client.get(reverse("admin:mlmodels_protectedalias_changelist")).status_code == 403
    refused = superuser_client.post(reverse("admin:mlmodels_protectedalias_add"), {"name": "Latest"})
    assert refused.status_code == 200 and not ProtectedAlias.objects.filter(name="Latest").exists()
