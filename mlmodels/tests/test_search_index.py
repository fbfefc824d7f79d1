"""The list's search: answered from the trigram indexes on PostgreSQL, with a plan that keeps the list's order."""

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from mlmodels import selectors
from mlmodels.filters import MLModelFilterSet
from mlmodels.models import MLModel
from mlmodels.tests.factories import MLModelFactory


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("query", ["search=churn", "search=churn model"])
def test_search_can_use_the_trigram_indexes(query):
    queryset = MLModelFilterSet(QueryDict(query), queryset=MLModel.objects.all()).qs[:100]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # An empty test table is cheapest to scan, or to walk by another index: forbid both, so the
        # plan can only be a bitmap scan of an index matching the exact expression the search sends
        # (UPPER(col) LIKE UPPER(%s)) or, when there is none, the scan these settings only discourage.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "mlmodel_name_trgm_idx" in plan, plan
    assert "mlmodel_description_trgm_idx" in plan, plan


@pytest.mark.django_db
@pytest.mark.parametrize("ordering", [None, "-accuracy", "name", "-created_at"])
def test_the_search_plan_keeps_the_order_and_rows_of_the_list(client_for, user, ordering):
    for number in range(12):
        MLModelFactory(owner=user, name=f"churn-{number % 5}-{number}", accuracy=(number * 7 % 10) / 10)
    MLModelFactory(owner=user, name="unrelated")
    client = client_for(user)
    query = "?search=churn&page_size=5" + (f"&ordering={ordering}" if ordering else "")

    pages = [client.get(f"/api/v1/models/{query}&page={page}").json() for page in (1, 2, 3)]

    ids = [row["id"] for page in pages for row in page["results"]]
    expected = MLModelFilterSet(QueryDict(query[1:]), queryset=MLModel.objects.all()).qs
    assert ids == list(expected.values_list("id", flat=True))
    assert pages[0]["count"] == 12 and len(set(ids)) == 12


@pytest.mark.django_db
def test_the_search_plan_orders_like_the_plain_query(user):
    for number in range(6):
        MLModelFactory(owner=user, name=f"churn-{number}", accuracy=number / 10)
    searched = MLModelFilterSet(QueryDict("search=churn&ordering=-accuracy"), queryset=MLModel.objects.all()).qs

    planned = selectors.model_search_plan(searched, matches=6)

    assert list(planned) == list(searched)


@pytest.mark.django_db
def test_a_searched_list_counts_its_rows_once(client_for, user):
    # The count picks the search's plan and fills the page's "count": one COUNT serves both.
    MLModelFactory(owner=user, name="churn-1")
    with CaptureQueriesContext(connection) as captured:
        response = client_for(user).get("/api/v1/models/?search=churn")

    assert response.json()["count"] == 1
    assert sum("COUNT(" in query["sql"] for query in captured.captured_queries) == 1
