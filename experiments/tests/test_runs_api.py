"""/api/v1/experiments/{id}/runs/ as the owner, another signed-in user, a superuser and an anonymous client."""

import json

import pytest

from experiments import runs
from experiments.models import Run, RunMetric, RunStatus
from experiments.tests.factories import ExperimentFactory

pytestmark = pytest.mark.django_db

FIELDS = {
    "run_id",
    "experiment_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "lifecycle_stage",
    "deleted_time",
    "user_id",
    "user",
    "artifact_uri",
    "params",
    "metrics",
    "tags",
}


@pytest.fixture
def experiment(user):
    return ExperimentFactory(owner=user, name="sweep")


@pytest.fixture
def run(experiment, user):
    return runs.run_create(experiment=experiment, actor=user, name="baseline", start_time=1_000)


def runs_url(experiment) -> str:
    return f"/api/v1/experiments/{experiment.pk}/runs/"


def run_url(run, suffix: str = "") -> str:
    return f"/api/v1/experiments/{run.experiment_id}/runs/{run.run_id}/{suffix}"


def strict_json(response):
    """The body parsed as strict JSON: NaN or Infinity literals (which Python's json writes) fail."""

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(response.content, parse_constant=refuse)


def test_anonymous_clients_get_401_everywhere(api_client, run):
    experiment_runs = f"/api/v1/experiments/{run.experiment_id}/runs/"
    assert api_client.get(experiment_runs).status_code == 401
    assert api_client.post(experiment_runs, {}, format="json").status_code == 401
    for method, url in [
        ("get", run_url(run)),
        ("patch", run_url(run)),
        ("delete", run_url(run)),
        ("post", run_url(run, "log-batch/")),
        ("post", run_url(run, "restore/")),
        ("get", run_url(run, "metrics/loss/")),
    ]:
        assert getattr(api_client, method)(url).status_code == 401, url


def test_owner_creates_a_run_and_reads_it_back(owner_api, experiment, user):
    response = owner_api.post(
        runs_url(experiment), {"name": "lr-0.1", "start_time": 1_700_000_000_000, "tags": {"team": "ml"}}, format="json"
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == FIELDS
    assert (body["name"], body["status"], body["user_id"], body["user"]) == ("lr-0.1", "RUNNING", user.pk, "owner")
    assert body["tags"] == {"mlflow.runName": "lr-0.1", "team": "ml"}
    assert body["artifact_uri"] == f"mlflow-artifacts:/{experiment.pk}/{body['run_id']}/artifacts"
    assert owner_api.get(f"{runs_url(experiment)}{body['run_id']}/").json() == body


def test_a_run_created_without_a_name_gets_one(owner_api, experiment):
    response = owner_api.post(runs_url(experiment), {}, format="json")

    assert response.status_code == 201
    assert response.json()["name"].count("-") == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"status": "FINISHED"}, "status"),
        ({"start_time": -5}, "start_time"),
        ({"tags": {"bad$key": "v"}}, "tags"),
        ({"tags": ["a"]}, "tags"),
        ({"name": "a", "tags": {"mlflow.runName": "b"}}, "name"),
    ],
)
def test_create_refuses_bad_input_with_400_naming_the_field(owner_api, experiment, payload, field):
    response = owner_api.post(runs_url(experiment), payload, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Run.objects.exists()


def test_others_read_runs_but_get_403_for_any_change(other_api, experiment, run):
    assert other_api.get(run_url(run)).status_code == 200
    assert other_api.get(runs_url(experiment)).json()["count"] == 1

    assert other_api.post(runs_url(experiment), {}, format="json").status_code == 403
    assert other_api.patch(run_url(run), {"status": "KILLED"}, format="json").status_code == 403
    assert (
        other_api.post(run_url(run, "log-batch/"), {"params": [{"key": "a", "value": "1"}]}, format="json").status_code
        == 403
    )
    assert other_api.delete(run_url(run)).status_code == 403
    run.refresh_from_db()
    assert (run.status, run.lifecycle_stage, run.params.count()) == ("RUNNING", "active", 0)


def test_a_run_is_404_under_another_experiment_or_with_a_malformed_id(owner_api, user, run):
    elsewhere = ExperimentFactory(owner=user)

    assert owner_api.get(f"/api/v1/experiments/{elsewhere.pk}/runs/{run.run_id}/").status_code == 404
    assert owner_api.get(f"/api/v1/experiments/{run.experiment_id}/runs/{'0' * 32}/").status_code == 404
    assert owner_api.get(f"/api/v1/experiments/{run.experiment_id}/runs/{run.run_id.upper()}/").status_code == 404
    assert owner_api.get("/api/v1/experiments/999999/runs/").status_code == 404


def test_log_batch_then_list_shows_params_latest_metrics_and_tags(owner_api, experiment, run):
    response = owner_api.post(
        run_url(run, "log-batch/"),
        {
            "metrics": [
                {"key": "loss", "value": 0.9, "timestamp": 10, "step": 0},
                {"key": "loss", "value": 0.4, "timestamp": 20, "step": 1},
                {"key": "acc", "value": "NaN", "timestamp": 20},
                {"key": "gain", "value": "Infinity", "timestamp": "20", "step": "1"},
            ],
            "params": [{"key": "lr", "value": "0.1"}],
            "tags": [{"key": "mlflow.source.name", "value": "train.py"}],
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {"metrics": 4, "params": 1, "tags": 1}
    (row,) = strict_json(owner_api.get(runs_url(experiment)))["results"]
    assert row["params"] == {"lr": "0.1"}
    assert row["metrics"] == {
        "acc": {"value": "NaN", "timestamp": 20, "step": 0},
        "gain": {"value": "Infinity", "timestamp": 20, "step": 1},
        "loss": {"value": 0.4, "timestamp": 20, "step": 1},
    }
    assert row["tags"]["mlflow.source.name"] == "train.py"


def test_metric_history_lists_every_point_in_step_order(owner_api, user, run):
    runs.run_log_batch(
        run=run,
        actor=user,
        metrics=[
            {"key": "train/loss", "value": v, "step": s, "timestamp": 5}
            for s, v in [(2, 0.2), (0, float("-inf")), (1, 0.5)]
        ],
    )

    response = owner_api.get(run_url(run, "metrics/train/loss/"))

    assert response.status_code == 200
    body = strict_json(response)
    assert body["count"] == 3
    assert [(p["step"], p["value"]) for p in body["results"]] == [(0, "-Infinity"), (1, 0.5), (2, 0.2)]
    assert owner_api.get(run_url(run, "metrics/never/")).json()["results"] == []


@pytest.mark.parametrize(
    ("batch", "field", "start"),
    [
        ({"params": [{"key": "lr", "value": "0.2"}]}, "params", "Changing param values is not allowed."),
        ({"metrics": [{"key": "m", "value": 1}] * 1001}, "metrics", "A batch logging request can contain at most 1000"),
        ({"metrics": [{"key": "m", "value": "high"}]}, "metrics", "metrics[0]: Got invalid value 'high'"),
        ({"metrics": [{"key": "../m", "value": 1}]}, "metrics", "metrics[0]: Invalid metric name: '../m'."),
        ({"metrics": {"key": "m"}}, "metrics", "Expected a list"),
        ({"params": [["lr", "0.1"]]}, "params", "params[0] must be an object"),
        ({"colour": "red"}, "colour", "Unknown or read-only field."),
    ],
)
def test_log_batch_refuses_bad_batches_with_400_and_writes_nothing(owner_api, user, run, batch, field, start):
    runs.run_log_batch(run=run, actor=user, params=[{"key": "lr", "value": "0.1"}])

    response = owner_api.post(run_url(run, "log-batch/"), batch, format="json")

    assert response.status_code == 400
    assert response.json()[field][0].startswith(start), response.json()
    assert not RunMetric.objects.exists() and run.params.count() == 1


def test_log_batch_to_a_deleted_run_is_refused(owner_api, user, run):
    runs.run_delete(run=run, actor=user)

    response = owner_api.post(run_url(run, "log-batch/"), {"metrics": [{"key": "m", "value": 1}]}, format="json")

    assert response.status_code == 400
    assert "must be in the 'active' state" in response.json()["detail"]


def test_patch_finishes_a_run_and_renames_it(owner_api, run):
    response = owner_api.patch(run_url(run), {"status": "FINISHED", "end_time": 61_000, "name": "done"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["end_time"], body["name"], body["tags"]["mlflow.runName"]) == (
        "FINISHED",
        61_000,
        "done",
        "done",
    )


@pytest.mark.parametrize(
    "payload", [{"status": "DONE"}, {"end_time": -1}, {"lifecycle_stage": "deleted"}, {"name": ""}]
)
def test_patch_refuses_bad_input(owner_api, run, payload):
    response = owner_api.patch(run_url(run), payload, format="json")

    assert response.status_code == 400
    assert set(response.json()) == set(payload)


def test_delete_is_soft_restore_brings_the_run_back_and_the_list_follows(owner_api, experiment, run):
    assert owner_api.delete(run_url(run)).status_code == 204

    assert owner_api.get(run_url(run)).json()["lifecycle_stage"] == "deleted"
    assert owner_api.get(runs_url(experiment)).json()["count"] == 0
    assert [r["run_id"] for r in owner_api.get(f"{runs_url(experiment)}?lifecycle=deleted").json()["results"]] == [
        run.run_id
    ]

    restored = owner_api.post(run_url(run, "restore/"))
    assert restored.status_code == 200 and restored.json()["lifecycle_stage"] == "active"
    assert owner_api.get(runs_url(experiment)).json()["count"] == 1


def test_list_sorts_by_a_metric_and_filters_by_status(owner_api, experiment, user):
    for name, accuracy in [("low", 0.5), ("high", 0.9), ("mid", 0.7)]:
        run = runs.run_create(experiment=experiment, actor=user, name=name)
        runs.run_log_batch(run=run, actor=user, metrics=[{"key": "accuracy", "value": accuracy}])
    runs.run_update(run=Run.objects.get(name="mid"), actor=user, status=RunStatus.FINISHED)

    ordered = owner_api.get(f"{runs_url(experiment)}?ordering=-metrics.accuracy").json()["results"]
    finished = owner_api.get(f"{runs_url(experiment)}?status=FINISHED").json()["results"]

    assert [row["name"] for row in ordered] == ["high", "mid", "low"]
    assert [row["name"] for row in finished] == ["mid"]


@pytest.mark.parametrize(
    ("query", "field"), [("ordering=colour", "ordering"), ("lifecycle=gone", "lifecycle"), ("status=DONE", "status")]
)
def test_list_refuses_unknown_sort_keys_and_filters(owner_api, experiment, query, field):
    response = owner_api.get(f"{runs_url(experiment)}?{query}")

    assert response.status_code == 400
    assert field in response.json()


def test_runs_list_takes_as_many_queries_for_3_runs_as_for_30(
    owner_api, experiment, user, django_assert_max_num_queries
):
    def add(count: int) -> None:
        for _ in range(count):
            run = runs.run_create(experiment=experiment, actor=user, tags={"team": "ml"})
            points = [{"key": "loss", "value": 0.5, "step": s} for s in range(3)]
            runs.run_log_batch(
                run=run,
                actor=user,
                metrics=points,
                params=[{"key": "lr", "value": "0.1"}, {"key": "depth", "value": "3"}],
            )

    def queries() -> int:
        # The user (JWT), the experiment, the count, the page of runs (+ users), their params, latest
        # metrics and tags.
        with django_assert_max_num_queries(7) as captured:
            response = owner_api.get(f"{runs_url(experiment)}?page_size=100&ordering=-metrics.loss")
        assert response.status_code == 200
        assert all(row["params"] and row["metrics"] and row["tags"] for row in response.json()["results"])
        return len(captured)

    add(3)
    few = queries()
    add(27)
    assert queries() == few
