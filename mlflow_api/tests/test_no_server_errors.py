"""Whatever a client sends to the MLflow API, the answer is MLflow's error shape with a 4xx (or 501),
never a 500: every endpoint, every method, with bodies of the wrong shape and fields of the wrong type."""

import json

import pytest

from experiments.tests.factories import ExperimentFactory
from mlflow_api.urls import ENDPOINTS
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db
API = "/api/2.0/mlflow"
PATHS = [
    *ENDPOINTS,
    f"logged-models/m-{'a' * 32}",
    f"logged-models/m-{'a' * 32}/tags",
    f"logged-models/m-{'a' * 32}/tags/k",
    f"logged-models/m-{'a' * 32}/params",
    "logged-models/not-an-id",
    "no/such/endpoint",
]
# Every field name the endpoints read, each given a value of the wrong type.
FIELDS = (
    "name", "new_name", "version", "key", "value", "alias", "stage", "source", "run_id", "run_uuid", "model_id",
    "experiment_id", "experiment_ids", "experiment_name", "filter", "filter_string", "order_by", "max_results",
    "page_token", "tags", "params", "metrics", "status", "end_time", "start_time", "description", "models",
    "metric_key", "source_run_id", "run_view_type", "view_type", "stages", "archive_existing_versions",
)  # fmt: skip
WRONG_VALUES = (
    None, 12, -1, 1.5, True, [], ["a", 1], ["\ud800"], {}, {"key": []}, "", "\x00", "\ud800", "a" * 10_000,
    "'; DROP TABLE",
)  # fmt: skip


def _bodies():
    yield "empty", None
    yield "not json", "{"
    yield "a list", "[]"
    yield "a number", "7"
    for value in WRONG_VALUES:
        yield f"every field {value!r:.20}", json.dumps(dict.fromkeys(FIELDS, value))


ONE_WRONG = (12, ["x"], {"a": 1})


def _one_wrong_field(base: dict):
    """A body right but for one field, for each field and wrong value: it gets past the checks of
    the fields before it."""
    for field in FIELDS:
        for value in ONE_WRONG:
            yield f"{field}={value!r}", json.dumps({**base, field: value})


@pytest.fixture
def data(user):
    experiment = ExperimentFactory(owner=user, name="e")
    MLModelFactory(owner=user, name="m")
    return experiment


@pytest.mark.parametrize("path", PATHS)
def test_no_request_to_the_mlflow_api_is_a_server_error(owner_api, data, path):
    owner_api.raise_request_exception = False  # a crash is reported below as the 500 a client gets
    failures = []
    for method in ("get", "post", "patch", "delete", "put"):
        for label, body in _bodies():
            call = getattr(owner_api, method)
            if method == "get":
                if body is not None and "\\ud800" in body:
                    continue  # a query string carries UTF-8 bytes: no lone surrogate gets there
                query = (
                    {}
                    if body is None or not body.startswith('{"')
                    else {field: str(value) for field, value in json.loads(body).items()}
                )
                answer = call(f"{API}/{path}", query)
            else:
                answer = call(f"{API}/{path}", body, content_type="application/json")
            if answer.status_code >= 500 and answer.status_code != 501:
                failures.append(f"{method.upper()} {path} ({label}): {answer.status_code} {answer.content[:200]!r}")
            elif answer.status_code >= 400:
                shown = answer.json()
                if set(shown) != {"error_code", "message"}:
                    failures.append(f"{method.upper()} {path} ({label}): not MLflow's error shape: {shown}")
    assert not failures, "\n".join(failures[:40])


@pytest.mark.parametrize("path", PATHS)
def test_one_field_of_the_wrong_type_is_a_clear_error(owner_api, data, path):
    owner_api.raise_request_exception = False
    view = ENDPOINTS.get(path)
    methods = [view.method] if view is not None and isinstance(view.method, str) else ["POST", "PATCH", "DELETE"]
    base = {
        "name": "m", "version": "1", "experiment_id": str(data.pk), "experiment_ids": [str(data.pk)], "key": "k",
        "value": "v", "alias": "a", "source": "runs:/0123456789abcdef0123456789abcdef/model",
    }  # fmt: skip
    failures = []
    for method in methods:
        for label, body in _one_wrong_field(base):
            if method == "GET":
                answer = owner_api.get(f"{API}/{path}", {k: str(v) for k, v in json.loads(body).items()})
            else:
                answer = getattr(owner_api, method.lower())(f"{API}/{path}", body, content_type="application/json")
            if answer.status_code >= 500 and answer.status_code != 501:
                failures.append(f"{method} {path} ({label}): {answer.status_code}")
    assert not failures, "\n".join(failures[:40])
