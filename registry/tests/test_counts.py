"""List counts are cached between writes and never stale after one.

The tests run in autocommit, as requests do (``transaction=True``): a count is cached outside a
transaction only, and the generation moves on when a service's event is delivered after its commit.
"""

import io

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from experiments import services as experiment_services
from mlmodels import services
from mlmodels.models import MLModel
from mlmodels.tests.factories import MLModelFactory
from registry import counts

MODELS = "/api/v1/models/"


@pytest.fixture
def counts_cached(settings):
    settings.CACHE_COUNTS = True


def list_count(client, url=MODELS, query="") -> tuple[int, int]:
    """(the list's count, the queries the request made)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url + query)
    assert response.status_code == 200, response.content
    return response.json()["count"], len(queries)


def generation():
    return cache.get(counts.GENERATION_KEY)


def upload(content: bytes = b"weights") -> io.BytesIO:
    data = io.BytesIO(content)
    data.name = "model.pkl"
    return data


@pytest.mark.django_db(transaction=True)
def test_a_repeated_list_takes_its_count_from_the_cache(counts_cached, client_for, user):
    MLModelFactory.create_batch(3, owner=user, framework="sklearn")
    client = client_for(user)

    first, first_queries = list_count(client, query="?framework=sklearn")
    second, second_queries = list_count(client, query="?framework=sklearn")

    assert first == second == 3
    assert second_queries == first_queries - 1


def _follow_every_kind_of_write(client, user):
    model = MLModelFactory(owner=user, name="one")
    versions = f"{MODELS}{model.pk}/versions/"
    history = f"{MODELS}{model.pk}/history/"
    assert list_count(client)[0] == 1
    assert list_count(client, query="?lifecycle=staging")[0] == 0
    assert list_count(client, query="?framework=pytorch")[0] == 0
    assert list_count(client, versions)[0] == 1
    assert list_count(client, history)[0] == 0
    assert list_count(client, "/api/v1/experiments/")[0] == 0

    created = client.post(MODELS, {"name": "two"}, format="json")
    assert created.status_code == 201
    assert list_count(client)[0] == 2

    services.version_record(model=model, actor=user, data={"accuracy": 0.5})
    assert list_count(client, versions)[0] == 2

    services.model_attach_file(model=model, actor=user, file=upload())
    assert list_count(client, versions)[0] == 3

    services.model_update(model=model, actor=user, data={"framework": "pytorch"})
    assert list_count(client, query="?framework=pytorch")[0] == 1

    services.model_rollback(version=model.versions.get(version_number=1), actor=user)
    assert list_count(client, versions)[0] == 4

    services.lifecycle_move(model=model, actor=user, to_stage="staging")
    assert list_count(client, query="?lifecycle=staging")[0] == 1
    assert list_count(client, history)[0] == 1

    experiment = experiment_services.experiment_create(owner=user, name="sweep")
    assert list_count(client, "/api/v1/experiments/")[0] == 1
    services.model_update(model=model, actor=user, data={"experiment": experiment})
    assert list_count(client, query=f"?experiment={experiment.pk}")[0] == 1
    linked = f"?experiment={experiment.pk}"
    experiment_services.experiment_delete(experiment=experiment, actor=user)
    assert list_count(client, "/api/v1/experiments/")[0] == 0
    assert list_count(client, query=linked)[0] == 0

    services.model_delete(model=model, actor=user)
    assert list_count(client)[0] == 1
    assert list_count(client, query="?lifecycle=staging")[0] == 0


@pytest.mark.django_db(transaction=True)
def test_counts_follow_every_kind_of_write(counts_cached, client_for, user):
    _follow_every_kind_of_write(client_for(user), user)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_counts_follow_every_kind_of_write_through_redis(counts_cached, client_for, user):
    _follow_every_kind_of_write(client_for(user), user)


@pytest.mark.django_db(transaction=True)
def test_the_admins_delete_action_goes_through_the_service_and_moves_counts_on(counts_cached, client_for, superuser):
    models = MLModelFactory.create_batch(2, owner=superuser)
    client = client_for(superuser)
    assert list_count(client)[0] == 2
    admin = Client()
    admin.force_login(superuser)

    response = admin.post(
        "/admin/mlmodels/mlmodel/",
        {"action": "delete_selected", "_selected_action": [models[0].pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert list_count(client)[0] == 1


@pytest.mark.django_db(transaction=True)
def test_different_filters_have_their_own_counts(counts_cached, client_for, user):
    MLModelFactory(owner=user, framework="sklearn")
    MLModelFactory.create_batch(2, owner=user, framework="pytorch")
    client = client_for(user)

    assert list_count(client, query="?framework=sklearn")[0] == 1
    assert list_count(client, query="?framework=pytorch")[0] == 2
    assert list_count(client)[0] == 3


@pytest.mark.django_db(transaction=True)
def test_without_a_shared_cache_every_list_counts_afresh(settings, client_for, user):
    settings.CACHE_COUNTS = False
    MLModelFactory(owner=user)
    client = client_for(user)

    _, first_queries = list_count(client)
    _, second_queries = list_count(client)

    assert first_queries == second_queries
    assert generation() is None


@pytest.mark.django_db(transaction=True)
def test_a_count_inside_a_transaction_sees_its_own_rows_and_caches_nothing(counts_cached, client_for, user):
    client = client_for(user)
    model = MLModelFactory(owner=user)
    assert list_count(client)[0] == 1
    _, cached_queries = list_count(client)
    with transaction.atomic():
        services.model_create(owner=user, name="inside")
        services.model_delete(model=model, actor=user)
        services.model_create(owner=user, name="inside-too")
        assert list_count(client) == (2, cached_queries + 1)
        assert list_count(client) == (2, cached_queries + 1)
        transaction.set_rollback(True)
    assert list_count(client) == (1, cached_queries)


@pytest.mark.django_db(transaction=True)
def test_the_generation_moves_on_only_once_the_write_commits(counts_cached, client_for, user):
    client = client_for(user)
    model = MLModelFactory(owner=user)
    list_count(client)
    before = generation()
    assert before is not None

    with transaction.atomic():
        services.version_record(model=model, actor=user, data={"accuracy": 0.5})
        services.lifecycle_move(model=model, actor=user, to_stage="staging")
        assert generation() == before, "moved on before the commit"

    assert generation() != before


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_or_refused_write_leaves_the_generation_and_the_cached_counts(counts_cached, client_for, user):
    client = client_for(user)
    model = MLModelFactory(owner=user)
    _, cached_queries = list_count(client)
    before = generation()

    with pytest.raises(RuntimeError), transaction.atomic():
        services.model_delete(model=MLModel.objects.get(pk=model.pk), actor=user)
        raise RuntimeError("the request failed after the delete")
    with pytest.raises(ValidationError, match="Cannot move"):
        services.lifecycle_move(model=model, actor=user, to_stage="production")

    assert generation() == before
    assert list_count(client) == (1, cached_queries - 1)
