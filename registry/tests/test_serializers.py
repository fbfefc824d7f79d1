"""The API's row path (registry/api/rows.py) writes exactly the bytes DRF's serializers write."""

import datetime

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from experiments.tests.factories import ExperimentFactory
from mlmodels import selectors, services
from mlmodels.api import (
    MODEL_ROW,
    VERSION_ROW,
    LifecycleEventSerializer,
    MLModelSerializer,
    ModelVersionSerializer,
    version_output,
)
from mlmodels.models import MLModel, ModelVersion, Stage
from mlmodels.tests.factories import MLModelFactory
from registry.api.rows import RowFormat, iso_datetime

ZONES = ["UTC", "Europe/Paris", "America/St_Johns"]


def rendered(data) -> bytes:
    return JSONRenderer().render(data)


@pytest.fixture
def models(user):
    """A model with every optional value set (experiment, file, metrics, nested hyperparameters in
    any script) and one with every optional value null, each with two versions."""
    full = MLModelFactory(
        owner=user,
        experiment=ExperimentFactory(owner=user),
        accuracy=0.25,
        hyperparameters={"depth": 3, "nested": {"a": [1, 2.5, None, True]}, "ünï": "🚀 \u2028"},
    )
    key = f"users/{user.pk}/models/{full.pk}/v1/model.pkl"
    MLModel.objects.filter(pk=full.pk).update(file=key, file_size=10, file_sha256="ab" * 32)
    ModelVersion.objects.filter(model=full).update(file=key, file_size=10, file_sha256="ab" * 32)
    empty = MLModelFactory(owner=user, description="", accuracy=None, precision=None, recall=None, f1_score=None)
    for model in (full, empty):
        services.version_record(model=model, actor=user, data={"accuracy": 0.5}, note="nightly")
    return MLModel.objects.filter(pk__in=[full.pk, empty.pk]).order_by("pk")


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ZONES)
def test_model_rows_show_the_bytes_of_the_drf_serializer(models, settings, zone):
    settings.TIME_ZONE = zone
    with timezone.override(zone):
        rows = selectors.model_rows(models, columns=MODEL_ROW.columns)
        assert rendered(MODEL_ROW.format_rows(rows)) == rendered(MLModelSerializer(models, many=True).data)
        for model in models:
            expected = rendered(MLModelSerializer(model).data)
            assert rendered(MODEL_ROW.format(rows.get(pk=model.pk))) == expected
            assert rendered(MODEL_ROW.format_instance(model)) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ZONES)
def test_version_rows_show_the_bytes_of_the_drf_serializer(models, settings, zone):
    settings.TIME_ZONE = zone
    with timezone.override(zone):
        for model in models:
            services.alias_set(model=model, actor=model.owner, alias="champion", version_number=1)
            model.refresh_from_db()
            rows = selectors.version_rows(model=model, columns=VERSION_ROW.columns)
            versions = selectors.version_list(model=model)
            listed = [version_output(row, model.aliases) for row in VERSION_ROW.format_rows(rows)]
            assert rendered(listed) == rendered(ModelVersionSerializer(versions, many=True).data)
            for version in versions:
                expected = rendered(ModelVersionSerializer(version).data)
                assert rendered(version_output(VERSION_ROW.format(rows.get(pk=version.pk)), model.aliases)) == expected
                assert rendered(version_output(VERSION_ROW.format_instance(version), model.aliases)) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ZONES)
def test_the_api_answers_with_the_bytes_of_the_drf_serializers(client_for, user, models, settings, zone):
    settings.TIME_ZONE = zone
    client = client_for(user)
    model = models.first()
    with timezone.override(zone):
        listed = client.get("/api/v1/models/?ordering=created_at")
        assert listed.content.endswith(rendered(MLModelSerializer(models, many=True).data) + b"}")
        assert client.get(f"/api/v1/models/{model.pk}/").content == rendered(MLModelSerializer(model).data)
        versions = selectors.version_list(model=model)
        listed = client.get(f"/api/v1/models/{model.pk}/versions/")
        assert listed.content.endswith(rendered(ModelVersionSerializer(versions, many=True).data) + b"}")
        one = client.get(f"/api/v1/models/{model.pk}/versions/2/")
        assert one.content == rendered(ModelVersionSerializer(versions.get(version_number=2)).data)
        created = client.post(
            f"/api/v1/models/{model.pk}/versions/", {"accuracy": 1, "note": "ünï"}, content_type="application/json"
        )
        assert created.status_code == 201
        assert created.content == rendered(ModelVersionSerializer(versions.get(version_number=3)).data)


@pytest.mark.django_db
def test_the_browsable_api_builds_a_models_forms_from_its_serializer(client, user, other_user, models):
    """Its forms (and their permission checks) come from the serializer and instance behind the data:
    the owner may delete the model, another user is not offered to."""
    url = f"/api/v1/models/{models.first().pk}/"
    for viewer, offered in ((user, True), (other_user, False)):
        client.force_login(viewer)
        page = client.get(url, HTTP_ACCEPT="text/html").content.decode()
        assert ('data-target="#deleteModal">DELETE</button>' in page) is offered


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=datetime.UTC),  # just before Paris moves on
        datetime.datetime(2026, 3, 29, 1, 0, tzinfo=datetime.UTC),
        datetime.datetime(2026, 10, 25, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30))),
        datetime.datetime(2026, 10, 25, 2, 30),  # naive: taken as the current time zone's, as DRF does
    ],
)
def test_datetimes_are_shown_as_drf_shows_them(settings, zone, value):
    from rest_framework import serializers

    settings.TIME_ZONE = zone
    with timezone.override(zone):
        expected = serializers.DateTimeField().to_representation(value)
        assert RowFormat(["at"], datetimes=["at"]).format((value,)) == {"at": expected}
        assert iso_datetime(value, timezone.get_current_timezone()) == expected


def test_a_datetime_without_time_zones_is_shown_naive_as_drf_shows_it(settings):
    from rest_framework import serializers

    settings.USE_TZ = False
    value = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert RowFormat(["at"], datetimes=["at"]).format((value,)) == {
        "at": serializers.DateTimeField().to_representation(value)
    }


def test_a_row_format_refuses_a_source_or_datetime_that_is_not_one_of_its_fields():
    with pytest.raises(ValueError, match="file_path"):
        RowFormat(["id"], sources={"file_path": "file"})
    with pytest.raises(ValueError, match="created_at"):
        RowFormat(["id"], datetimes=["created_at"])


@pytest.mark.django_db
def test_history_shows_a_deleted_actor_as_null(user, superuser):
    model = MLModelFactory(owner=user)
    services.lifecycle_move(model=model, actor=superuser, to_stage=Stage.ARCHIVED)
    superuser.delete()
    event = model.events.select_related("actor").get()
    data = LifecycleEventSerializer(event).data
    assert (data["actor_id"], data["actor"]) == (None, None)
