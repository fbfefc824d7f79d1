"""Every API list and detail endpoint answers in at most four SQL queries, whatever the page size."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.roles import APPROVERS_GROUP
from accounts.tests.factories import UserFactory
from experiments.tests.factories import ExperimentFactory
from mlmodels import approvals, services
from mlmodels.models import Stage
from mlmodels.tests.factories import ApprovalRequestFactory, MLModelFactory

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


# --- lists whose rows carry tags, aliases and approval requests ------------------------------------

# The largest number of queries each list takes, viewed by an approver with approvals on (the most a
# page asks: the navigation's count and the decide buttons), whether it shows 3 rows or 30.
LIST_BUDGETS = {
    # The user (JWT); the rows' count; the page of rows (tags and aliases are columns of the row).
    "/api/v1/models/?page_size=100": BUDGET,
    # The user (JWT); the count; the page of requests joined to model, requester and decider.
    "/api/v1/approvals/?page_size=100": BUDGET,
    # The user (session); the count; the approver's permissions (two); the navigation's count of waiting
    # requests; the owners of the filter form; the page of models (+owners).
    "/models/": 7,
    # The fragment htmx asks for: the user, the count, the page of models (+owners).
    "/models/ (htmx)": 3,
    # The user; the pending requests (+models, requesters, deciders); the approver's permissions (two);
    # the recent decisions (+models, requesters, deciders); the navigation's count.
    "/approvals/": 6,
}


def _catalogue(owner, decider, *, first: int, count: int) -> None:
    """``count`` more models of ``owner``, each with two tags and two aliases, a pending request for a
    protected alias and a rejected one."""
    for n in range(first, first + count):
        model = MLModelFactory(owner=owner, name=f"tagged-{n}", tags={"team": f"team-{n}", "tier": "gold"})
        services.version_record(model=model, actor=owner, data={"accuracy": 0.5})
        services.alias_set(model=model, actor=owner, alias="challenger", version_number=1)
        services.alias_set(model=model, actor=owner, alias="canary", version_number=2)
        ApprovalRequestFactory(model=model, alias="champion", requested_by=owner)
        rejected = ApprovalRequestFactory(model=model, alias="production", requested_by=owner)
        approvals.approval_reject(approval=rejected, actor=decider, comment="not yet")


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", LIST_BUDGETS)
def test_lists_of_tagged_aliased_models_and_of_requests_take_as_many_queries_for_3_rows_as_for_30(
    settings, client_for, user, superuser, endpoint, django_assert_max_num_queries
):
    settings.PRODUCTION_NEEDS_APPROVAL = True
    approver = UserFactory(username="reviewer")
    approver.groups.add(Group.objects.get(name=APPROVERS_GROUP))
    url = endpoint.removesuffix(" (htmx)")
    headers = {"HTTP_HX_REQUEST": "true"} if endpoint.endswith("(htmx)") else {}
    if url.startswith("/api/"):
        client = client_for(approver)
    else:
        client = Client()
        client.force_login(approver)

    def queries(rows: int) -> int:
        client.get(url, **headers)  # the first request of a list may count its rows
        with django_assert_max_num_queries(LIST_BUDGETS[endpoint]) as captured:
            response = client.get(url, **headers)
        assert response.status_code == 200, (url, response.content[:200])
        content = response.content.decode()
        if "/models/" in url:
            assert content.count("tagged-") >= min(rows, 20) and "team-" in content
        elif url.startswith("/api/"):
            assert content.count('"alias":"champion"') == rows and content.count('"status":"rejected"') == rows
        else:
            assert content.count("point @champion at version 1") == rows and "not yet" in content
        return len(captured)

    _catalogue(user, superuser, first=0, count=3)
    few = queries(3)
    _catalogue(user, superuser, first=3, count=27)
    many = queries(30)

    assert few == many, f"{endpoint}: {few} queries for 3 rows, {many} for 30"
