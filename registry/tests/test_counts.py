"""List counts are cached between writes and never stale after one.

The tests run in autocommit, as requests do (``transaction=True``): a count is cached once no
transaction is holding a write.
"""

from unittest import mock

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from mlmodels import services
from mlmodels.tests.factories import MLModelFactory
from registry import counts

MODELS = "/api/v1/models/"


@pytest.fixture
def counts_cached(settings):
    settings.CACHE_COUNTS = True


def list_count(client, query="") -> tuple[int, int]:
    """(the list's count, the queries the request made)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(MODELS + query)
    assert response.status_code == 200, response.content
    return response.json()["count"], len(queries)


@pytest.mark.django_db(transaction=True)
def test_a_repeated_list_takes_its_count_from_the_cache(counts_cached, client_for, user):
    MLModelFactory.create_batch(3, owner=user, framework="sklearn")
    client = client_for(user)

    first, first_queries = list_count(client, "?framework=sklearn")
    second, second_queries = list_count(client, "?framework=sklearn")

    assert first == second == 3
    assert second_queries == first_queries - 1


@pytest.mark.django_db(transaction=True)
def test_counts_follow_every_kind_of_write(counts_cached, client_for, user):
    client = client_for(user)
    model = MLModelFactory(owner=user, name="one")
    assert list_count(client)[0] == 1
    assert list_count(client, "?lifecycle=staging")[0] == 0

    created = client.post(MODELS, {"name": "two"}, format="json")
    assert created.status_code == 201
    assert list_count(client)[0] == 2

    services.lifecycle_move(model=model, actor=user, to_stage="staging")
    assert list_count(client, "?lifecycle=staging")[0] == 1

    services.model_delete(model=model, actor=user)
    assert list_count(client)[0] == 1
    assert list_count(client, "?lifecycle=staging")[0] == 0


@pytest.mark.django_db(transaction=True)
def test_different_filters_have_their_own_counts(counts_cached, client_for, user):
    MLModelFactory(owner=user, framework="sklearn")
    MLModelFactory.create_batch(2, owner=user, framework="pytorch")
    client = client_for(user)

    assert list_count(client, "?framework=sklearn")[0] == 1
    assert list_count(client, "?framework=pytorch")[0] == 2
    assert list_count(client)[0] == 3


@pytest.mark.django_db(transaction=True)
def test_without_a_shared_cache_every_list_counts_afresh(settings, client_for, user):
    settings.CACHE_COUNTS = False
    MLModelFactory(owner=user)
    client = client_for(user)

    _, first_queries = list_count(client)
    _, second_queries = list_count(client)

    assert first_queries == second_queries


@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_wrote_counts_its_own_rows_and_caches_nothing(counts_cached, client_for, user):
    client = client_for(user)
    MLModelFactory(owner=user)
    assert list_count(client)[0] == 1
    _, cached_queries = list_count(client)
    with transaction.atomic():
        MLModelFactory(owner=user)
        assert list_count(client) == (2, cached_queries + 1)
        assert list_count(client) == (2, cached_queries + 1)
        transaction.set_rollback(True)
    assert list_count(client) == (1, cached_queries)


@pytest.mark.django_db(transaction=True)
def test_a_transaction_moves_the_generation_once_at_commit(counts_cached, user):
    generations = []
    original = counts._next_generation
    spy = mock.patch.object(counts, "_next_generation", lambda: generations.append(original()))
    with spy, transaction.atomic():
        model = MLModelFactory(owner=user)
        services.version_record(model=model, actor=user, data={"accuracy": 0.5})
        assert generations == []
    assert len(generations) == 1
