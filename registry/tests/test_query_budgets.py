"""Every API list and detail endpoint answers in at most four SQL queries, whatever the page size."""

import pytest

from experiments.tests.factories import ExperimentFactory
from mlmodels import services
from mlmodels.models import Stage
from mlmodels.tests.factories import MLModelFactory

BUDGET = 4
ENDPOINTS = [
    "/api/v1/models/",
    "/api/v1/models/?search=churn&framework=sklearn&ordering=-accuracy",
    "/api/v1/models/{model}/",
    "/api/v1/models/{model}/versions/",
    "/api/v1/models/{model}/versions/2/",
    "/api/v1/models/{model}/history/",
    "/api/v1/experiments/",
    "/api/v1/experiments/{experiment}/",
    "/api/v1/auth/me/",
]


@pytest.fixture
def registry(user, superuser):
    """25 models, one with 13 versions and 12 stage moves by two actors, in 3 experiments."""
    experiments = ExperimentFactory.create_batch(3, owner=user)
    models = [
        MLModelFactory(owner=user, name=f"churn-{n}", framework="sklearn", experiment=experiments[n % 3])
        for n in range(25)
    ]
    model = models[0]
    for n in range(12):
        services.version_record(model=model, actor=user, data={"accuracy": n / 30})
        to_stage = Stage.STAGING if n % 2 == 0 else Stage.DEVELOPMENT
        services.lifecycle_move(model=model, actor=superuser if n % 3 else user, to_stage=to_stage)
    return {"model": model.pk, "experiment": experiments[0].pk}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_endpoint_stays_within_its_query_budget_for_any_page_size(
    client_for, user, registry, endpoint, django_assert_max_num_queries
):
    client = client_for(user)
    url = endpoint.format(**registry)
    separator = "&" if "?" in url else "?"

    def queries_for(page_size: int) -> int:
        # The user (JWT), the rows of the page, their count on a list's first request (cached after it
        # with Redis, registry/counts.py), the ids of an experiment's models: never one per row.
        with django_assert_max_num_queries(BUDGET) as captured:
            response = client.get(f"{url}{separator}page_size={page_size}")
        assert response.status_code == 200, (url, response.content[:200])
        return len(captured)

    queries_for(1)  # the first request may count the rows
    assert queries_for(1) == queries_for(100)
