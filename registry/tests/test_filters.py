"""The shared FilterSet base: one form class per class, and each request its own filters and fields."""

import pytest

from mlmodels.filters import MLModelFilterSet
from mlmodels.models import MLModel
from mlmodels.tests.factories import MLModelFactory


@pytest.mark.django_db
def test_filter_sets_of_one_class_share_no_filter_or_form_field(user):
    first = MLModelFilterSet({"search": "a"}, queryset=MLModel.objects.all())
    second = MLModelFilterSet({"search": "b"}, queryset=MLModel.objects.all())
    assert type(first.form) is type(second.form)
    for name in MLModelFilterSet.base_filters:
        assert first.filters[name] is not second.filters[name]
        assert first.filters[name] is not MLModelFilterSet.base_filters[name]
        assert first.form.fields[name] is not second.form.fields[name]
    assert first.filters["search"].parent is first
    assert second.filters["search"].parent is second


@pytest.mark.django_db
def test_a_method_filter_filters_through_its_own_filter_set(user):
    MLModelFactory(owner=user, name="alpha-model")
    MLModelFactory(owner=user, name="beta-model")
    for word, expected in (("alpha", ["alpha-model"]), ("beta", ["beta-model"])):
        filterset = MLModelFilterSet({"search": word}, queryset=MLModel.objects.all())
        assert filterset.is_valid(), filterset.errors
        assert [model.name for model in filterset.qs] == expected
        assert filterset.filters["search"].filter.f is filterset.filters["search"]


@pytest.mark.django_db
def test_an_invalid_value_is_refused_by_the_shared_form_class(user):
    filterset = MLModelFilterSet({"framework": "nope"}, queryset=MLModel.objects.all())
    assert not filterset.is_valid()
    assert "framework" in filterset.errors
    assert MLModelFilterSet({"framework": "sklearn"}, queryset=MLModel.objects.all()).is_valid()
