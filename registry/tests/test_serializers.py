"""The short-path output serializers give exactly what DRF's own ModelSerializer gives."""

import pytest
from django.utils import timezone
from rest_framework import serializers

from mlmodels import services
from mlmodels.api import LifecycleEventSerializer, MLModelSerializer, ModelVersionSerializer
from mlmodels.models import MLModel, ModelVersion, Stage
from mlmodels.tests.factories import MLModelFactory


def plain_drf(serializer_class):
    """The same serializer without CachedFieldsMixin: DRF's generic path."""
    return type(
        f"Plain{serializer_class.__name__}",
        (serializers.ModelSerializer,),
        {
            **{name: field for name, field in serializer_class._declared_fields.items()},
            "Meta": serializer_class.Meta,
        },
    )


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_cached_serializers_match_drf_output_for_every_field(user, settings, zone):
    settings.TIME_ZONE = zone
    model = MLModelFactory(owner=user, accuracy=0.25, hyperparameters={"depth": 3, "nested": {"a": [1, 2]}})
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING, comment="ok")
    version = services.version_record(model=model, actor=user, data={"accuracy": 0.5}, note="n")
    event = model.events.select_related("actor").get()
    with timezone.override(zone):
        for serializer_class, instance in (
            (MLModelSerializer, model),
            (ModelVersionSerializer, version),
            (LifecycleEventSerializer, event),
        ):
            expected = plain_drf(serializer_class)(instance).data
            assert serializer_class(instance).data == expected
            assert serializer_class([instance, instance], many=True).data == [expected, expected]


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_serializers_show_the_same_from_rows_as_from_instances(user, settings, zone):
    settings.TIME_ZONE = zone
    model = MLModelFactory(owner=user, accuracy=0.25, hyperparameters={"depth": 3, "nested": {"a": [1, 2]}})
    services.version_record(model=model, actor=user, data={"accuracy": 0.5}, note="n")
    with timezone.override(zone):
        for serializer_class, queryset in (
            (MLModelSerializer, MLModel.objects.filter(pk=model.pk)),
            (ModelVersionSerializer, ModelVersion.objects.filter(model=model)),
        ):
            rows = serializer_class.rows(queryset)
            assert rows.query.values_select, f"{serializer_class.__name__} should read rows, not instances"
            expected = plain_drf(serializer_class)(queryset, many=True).data
            assert serializer_class.represent_rows(rows) == expected


@pytest.mark.django_db
def test_a_serializer_with_a_related_field_keeps_reading_instances(user):
    model = MLModelFactory(owner=user)
    services.lifecycle_move(model=model, actor=user, to_stage=Stage.STAGING)
    queryset = model.events.select_related("actor")
    rows = LifecycleEventSerializer.rows(queryset)
    assert rows is queryset
    expected = plain_drf(LifecycleEventSerializer)(queryset, many=True).data
    assert LifecycleEventSerializer.represent_rows(rows) == expected


@pytest.mark.django_db
def test_cached_serializer_shows_a_deleted_actor_as_null(user, superuser):
    model = MLModelFactory(owner=user)
    services.lifecycle_move(model=model, actor=superuser, to_stage=Stage.ARCHIVED)
    superuser.delete()
    event = model.events.select_related("actor").get()
    data = LifecycleEventSerializer(event).data
    assert (data["actor_id"], data["actor"]) == (None, None)
