"""The shared FilterSet base: a form class built once where nothing can freeze in it, and each
filter set filtering through its own filters and its own form."""

import django_filters
import pytest
from django.test import RequestFactory
from django.utils import translation

from experiments.filters import ExperimentFilterSet
from experiments.models import Experiment
from experiments.tests.factories import ExperimentFactory
from mlmodels.filters import MLModelFilterSet
from mlmodels.models import MLModel
from mlmodels.tests.factories import MLModelFactory
from registry.filters import FilterSet, shares_form_class


class ExperimentOfTheRequesterFilterSet(FilterSet):
    experiment = django_filters.ModelChoiceFilter(
        queryset=lambda request: Experiment.objects.filter(owner=request.user)
    )

    class Meta:
        model = MLModel
        fields: list[str] = []


class FrameworkInUseFilterSet(FilterSet):
    framework = django_filters.AllValuesFilter()

    class Meta:
        model = MLModel
        fields: list[str] = []


def filter_set(data, filterset_class=MLModelFilterSet, **kwargs):
    return filterset_class(data, queryset=filterset_class._meta.model.objects.all(), **kwargs)


def fields_of(form_class) -> list[tuple]:
    def kinds(field):  # a CSV filter's field and widget classes are made for each field
        return type(field).__name__, type(field.widget).__name__

    def choices(field):
        return [(value, str(label)) for value, label in getattr(field, "choices", ())]

    return [
        (name, *kinds(field), str(field.label), field.help_text, field.required, choices(field))
        for name, field in form_class.base_fields.items()
    ]


@pytest.mark.django_db
def test_filter_sets_of_one_class_filter_each_by_their_own_data(user):
    MLModelFactory(owner=user, name="alpha-model", framework="sklearn")
    MLModelFactory(owner=user, name="beta-model", framework="xgboost")
    alpha = filter_set({"search": "alpha"})
    beta = filter_set({"search": "beta", "framework": "xgboost"})
    assert alpha.is_valid() and beta.is_valid()
    assert [model.name for model in alpha.qs] == ["alpha-model"]
    assert [model.name for model in beta.qs] == ["beta-model"]


@pytest.mark.django_db
def test_a_change_to_one_filter_sets_form_or_filters_shows_in_no_other():
    first = filter_set({"framework": "sklearn"})
    first.form.fields["framework"].choices = [("onnx", "ONNX")]
    first.form.fields["framework"].widget.attrs["class"] = "changed"
    first.filters["framework"].extra["help_text"] = "changed"
    assert not first.is_valid()

    second = filter_set({"framework": "sklearn"})
    assert second.is_valid()
    assert "class" not in second.form.fields["framework"].widget.attrs
    assert second.filters["framework"].extra["help_text"] != "changed"


@pytest.mark.django_db
def test_a_method_filter_filters_through_its_own_filter_set(user):
    MLModelFactory(owner=user, name="alpha-model")
    MLModelFactory(owner=user, name="beta-model")
    for word, expected in (("alpha", ["alpha-model"]), ("beta", ["beta-model"])):
        filterset = filter_set({"search": word})
        assert filterset.is_valid(), filterset.errors
        assert [model.name for model in filterset.qs] == expected
        assert filterset.filters["search"].filter.f is filterset.filters["search"]


@pytest.mark.django_db
def test_an_invalid_value_is_refused(user):
    filterset = filter_set({"framework": "nope"})
    assert not filterset.is_valid()
    assert "framework" in filterset.errors
    assert filter_set({"framework": "sklearn"}).is_valid()


@pytest.mark.django_db
def test_a_queryset_made_from_the_request_is_made_for_each_request(user, other_user):
    mine, theirs = ExperimentFactory(owner=user), ExperimentFactory(owner=other_user)
    for requester, allowed, refused in ((user, mine, theirs), (other_user, theirs, mine)):
        request = RequestFactory().get("/")
        request.user = requester
        assert filter_set({"experiment": allowed.pk}, ExperimentOfTheRequesterFilterSet, request=request).is_valid()
        assert not filter_set({"experiment": refused.pk}, ExperimentOfTheRequesterFilterSet, request=request).is_valid()


@pytest.mark.django_db
def test_choices_read_from_the_table_are_read_for_each_filter_set(user):
    MLModelFactory(owner=user, framework="sklearn")
    assert not filter_set({"framework": "onnx"}, FrameworkInUseFilterSet).is_valid()
    MLModelFactory(owner=user, framework="onnx")
    assert filter_set({"framework": "onnx"}, FrameworkInUseFilterSet).is_valid()


@pytest.mark.django_db
def test_labels_are_in_the_language_of_each_request():
    labels = {}
    for language in ("en", "fr", "en"):
        with translation.override(language):
            labels.setdefault(language, set()).add(filter_set({}).form.fields["min_accuracy"].label)
    assert len(labels["en"]) == 1
    assert labels["en"] != labels["fr"]


# What the shared form class relies on, checked against the installed django-filter: if one of these
# fails after an upgrade, the form fields of the app's filters are no longer built from the filters
# alone (or no longer through the field implementations STATIC_FIELDS names).


def test_the_apps_filter_sets_share_their_form_class():
    assert shares_form_class(MLModelFilterSet)
    assert shares_form_class(ExperimentFilterSet)
    assert not shares_form_class(ExperimentOfTheRequesterFilterSet)
    assert not shares_form_class(FrameworkInUseFilterSet)


@pytest.mark.django_db
@pytest.mark.parametrize("filterset_class", [MLModelFilterSet, ExperimentFilterSet])
def test_the_shared_form_class_has_the_fields_django_filter_builds_for_each_request(filterset_class, user):
    shared = filter_set({}, filterset_class).get_form_class()
    request = RequestFactory().get("/?search=churn&ordering=-name")
    request.user = user
    other = filter_set(request.GET, filterset_class, request=request)
    assert fields_of(shared) == fields_of(django_filters.FilterSet.get_form_class(other))
    assert type(other.form) is shared
