"""On PostgreSQL the list's search is answered from the trigram indexes, not a scan of the table."""

import pytest
from django.db import connection
from django.http import QueryDict

from mlmodels.filters import MLModelFilterSet
from mlmodels.models import MLModel


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("query", ["search=churn", "search=churn model"])
def test_search_can_use_the_trigram_indexes(query):
    queryset = MLModelFilterSet(QueryDict(query), queryset=MLModel.objects.all()).qs[:100]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # An empty test table is cheapest to scan: forbid that, so the plan shows whether an index
        # matches the exact expression the search sends (UPPER(col) LIKE UPPER(%s)).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "mlmodel_name_trgm_idx" in plan, plan
    assert "mlmodel_description_trgm_idx" in plan, plan
