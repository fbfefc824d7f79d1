"""The official MLflow client (mlflow-skinny, pinned in client-requirements.txt, in a virtualenv of its
own) against a live server of ours: its registry calls work unchanged, with an API key as
MLFLOW_TRACKING_TOKEN, and its errors carry MLflow's codes."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from accounts import services as account_services
from accounts.tests.factories import UserFactory
from mlmodels import services
from mlmodels.models import MLModel
from mlmodels.tests.factories import MLModelFactory

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".mlflow-client-venv"
REQUIREMENTS = Path(__file__).with_name("client-requirements.txt")


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """The client's Python, installed on first use (the package index is reachable wherever the tests
    run: a missing client is a failure, not a skip)."""
    python = VENV / "bin" / "python"
    stamp = VENV / "installed-requirements.txt"
    wanted = REQUIREMENTS.read_text()
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
            check=True,
        )
        stamp.write_text(wanted)
    return python


def run_client(python: Path, script: str, *, url: str, token: str) -> dict:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(VENV),
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_TRACKING_TOKEN": token,
        # Fail fast: the client retries 5xx and connection errors for minutes by default.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    }
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(script)], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


REGISTRY_SCRIPT = """
    import json
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    def code(call, *args, **kwargs):
        try:
            call(*args, **kwargs)
        except MlflowException as error:
            return error.error_code
        return None

    client = MlflowClient()
    out = {}
    made = client.create_registered_model("client-churn", tags={"team": "growth"}, description="made by the client")
    out["created"] = [made.name, made.description, dict(made.tags)]
    out["duplicate"] = code(client.create_registered_model, "client-churn")
    out["missing"] = code(client.get_registered_model, "no-such-model")
    out["not_mine"] = code(client.set_registered_model_tag, "not-mine", "k", "v")
    client.set_registered_model_tag("client-churn", "stage", "beta")
    client.delete_registered_model_tag("client-churn", "team")
    out["tags"] = dict(client.get_registered_model("client-churn").tags)
    client.update_registered_model("client-churn", description="changed")
    out["description"] = client.get_registered_model("client-churn").description

    client.set_registered_model_alias("served", "champion", 2)
    by_alias = client.get_model_version_by_alias("served", "champion")
    out["alias"] = [by_alias.version, list(by_alias.aliases)]
    client.set_model_version_tag("served", "2", "validated", "yes")
    out["version_tags"] = dict(client.get_model_version("served", "2").tags)
    client.transition_model_version_stage("served", "3", "Staging")
    out["latest_staging"] = [v.version for v in client.get_latest_versions("served", stages=["Staging"])]
    out["download_uri"] = client.get_model_version_download_uri("served", "3")

    page = client.search_registered_models(max_results=2)
    names = [m.name for m in page]
    while page.token:
        page = client.search_registered_models(max_results=2, page_token=page.token)
        names += [m.name for m in page]
    out["all_names"] = names
    out["like"] = [m.name for m in client.search_registered_models(filter_string="name LIKE 'client-%'")]
    out["by_tag"] = [m.name for m in client.search_registered_models(filter_string="tags.stage = 'beta'")]
    searched = client.search_registered_models(filter_string="name = 'served'")
    out["latest_in_search"] = [[v.version, v.current_stage] for m in searched for v in m.latest_versions]
    out["versions"] = [v.version for v in client.search_model_versions("name = 'served'")]
    out["bad_filter"] = code(client.search_registered_models, filter_string="name = 'a' OR name = 'b'")

    client.delete_registered_model_alias("served", "champion")
    out["alias_gone"] = code(client.get_model_version_by_alias, "served", "champion")
    import mlflow

    experiment = mlflow.set_experiment("client-experiment")
    out["experiment"] = [experiment.name, client.get_experiment(experiment.experiment_id).name]
    out["experiments"] = sorted(e.name for e in client.search_experiments())
    client.rename_registered_model("client-churn", "client-churn-2")
    client.delete_registered_model("client-churn-2")
    out["deleted"] = code(client.get_registered_model, "client-churn-2")
    print(json.dumps(out))
"""


@pytest.mark.django_db(transaction=True)
def test_the_official_client_drives_the_registry(mlflow_python, live_server):
    user = UserFactory(username="pipeline")
    _, token = account_services.api_key_create(actor=user, user=user, name="mlflow", scope="write")
    served = MLModelFactory(owner=user, name="served")
    for accuracy in (0.8, 0.9):
        services.version_record(model=served, actor=user, data={"accuracy": accuracy})
    MLModelFactory(owner=UserFactory(username="someone-else"), name="not-mine")

    out = run_client(mlflow_python, REGISTRY_SCRIPT, url=live_server.url, token=token)

    assert out["created"] == ["client-churn", "made by the client", {"team": "growth"}]
    assert out["duplicate"] == "RESOURCE_ALREADY_EXISTS"
    assert out["missing"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["not_mine"] == "PERMISSION_DENIED"
    assert out["tags"] == {"stage": "beta"} and out["description"] == "changed"
    assert out["alias"] == ["2", ["champion"]]
    assert out["version_tags"] == {"validated": "yes"}
    assert out["latest_staging"] == ["3"]
    assert out["download_uri"] == f"mlflow-artifacts:/registry/models/{served.pk}/versions/3"
    assert out["all_names"] == ["client-churn", "not-mine", "served"]
    assert out["like"] == ["client-churn"] and out["by_tag"] == ["client-churn"]
    assert out["latest_in_search"] == [["3", "Staging"]]
    assert out["versions"] == ["3", "2", "1"]
    assert out["bad_filter"] == "INVALID_PARAMETER_VALUE"
    assert out["alias_gone"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["deleted"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["experiment"] == ["client-experiment", "client-experiment"]
    assert "client-experiment" in out["experiments"]


RUN_SCRIPT = """
    import json
    import math
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.set_experiment("client-training")
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_params({"max_depth": 3, "learning_rate": 0.1})
        mlflow.log_param("solver", "lbfgs")
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metrics({"accuracy": 0.91, "f1_score": 0.88})
        mlflow.log_metric("odd", math.nan)
        mlflow.set_tag("team", "growth")
        run_id = run.info.run_id
    client = MlflowClient()
    got = client.get_run(run_id)
    out = {
        "status": got.info.status,
        "name": got.info.run_name,
        "ended": got.info.end_time is not None,
        "params": got.data.params,
        "metrics": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in got.data.metrics.items()},
        "tags": {k: v for k, v in got.data.tags.items() if not k.startswith("mlflow.")},
        "history": [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")],
    }
    try:
        client.log_param(run_id, "solver", "sgd")
    except MlflowException as error:
        out["changed_param"] = error.error_code
    experiment = client.get_experiment_by_name("client-training")
    found = client.search_runs([experiment.experiment_id], order_by=["metrics.accuracy DESC"])
    out["searched"] = [r.info.run_id for r in found]
    client.delete_run(run_id)
    out["deleted"] = client.get_run(run_id).info.lifecycle_stage
    print(json.dumps(out))
"""


@pytest.mark.django_db(transaction=True)
def test_the_official_client_logs_a_run(mlflow_python, live_server):
    user = UserFactory(username="trainer")
    _, token = account_services.api_key_create(actor=user, user=user, name="mlflow", scope="write")

    out = run_client(mlflow_python, RUN_SCRIPT, url=live_server.url, token=token)

    assert (out["status"], out["name"], out["ended"]) == ("FINISHED", "baseline", True)
    assert out["params"] == {"max_depth": "3", "learning_rate": "0.1", "solver": "lbfgs"}
    assert out["metrics"] == {"loss": 0.3, "accuracy": 0.91, "f1_score": 0.88, "odd": None}
    assert out["tags"] == {"team": "growth"}
    assert out["history"] == [[0, 0.9], [1, 0.5], [2, 0.3]]
    assert out["changed_param"] == "INVALID_PARAMETER_VALUE"
    assert len(out["searched"]) == 1
    assert out["deleted"] == "deleted"


TRAINING_SCRIPT = """
    import json
    import tempfile
    from pathlib import Path

    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    mlflow.set_experiment("client-churn-training")
    runs, models = [], []
    for C in (0.05, 1.0):
        with mlflow.start_run() as run:
            model = LogisticRegression(C=C, max_iter=300).fit(X, y)
            mlflow.log_params({"C": C, "max_iter": 300})
            mlflow.log_metrics({"accuracy": model.score(X, y), "loss": 1.5})
            mlflow.sklearn.log_model(model, name="model", registered_model_name="client-churn", input_example=X[:2])
            runs.append(run.info.run_id)
            models.append(model)
    client = MlflowClient()
    out = {"runs": runs}
    versions = sorted(client.search_model_versions("name = 'client-churn'"), key=lambda v: int(v.version))
    out["versions"] = [[v.version, v.run_id] for v in versions]
    client.set_registered_model_tag("client-churn", "team", "growth")
    client.set_model_version_tag("client-churn", "2", "validated", "yes")
    client.set_registered_model_alias("client-churn", "champion", "1")
    client.set_registered_model_alias("client-churn", "champion", "2")
    client.set_registered_model_alias("client-churn", "challenger", "1")
    client.delete_registered_model_alias("client-churn", "challenger")
    model = client.get_registered_model("client-churn")
    out["aliases"] = dict(model.aliases)
    out["tags"] = dict(model.tags)
    out["version_tags"] = dict(client.get_model_version("client-churn", "2").tags)

    served = mlflow.pyfunc.load_model("models:/client-churn@champion")
    out["same_predictions"] = bool(np.array_equal(served.predict(X), models[1].predict(X)))
    first = mlflow.sklearn.load_model("models:/client-churn/1")
    out["first_predictions"] = bool(np.array_equal(first.predict(X), models[0].predict(X)))
    with tempfile.TemporaryDirectory() as folder:
        path = mlflow.artifacts.download_artifacts("models:/client-churn@champion", dst_path=folder)
        out["downloaded"] = sorted(p.relative_to(path).as_posix() for p in Path(path).rglob("*") if p.is_file())
    try:
        client.create_model_version("client-churn", "file:///etc", run_id=runs[0])
    except MlflowException as error:
        out["local_source"] = error.error_code
    print(json.dumps(out))
"""


@pytest.fixture
def scans_in_process():
    """The scan tasks run in the server's process once a version commits (as on the embedded
    defaults), also where a broker is configured."""
    from registry.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.mark.django_db(transaction=True)
def test_the_official_client_trains_registers_aliases_and_loads_a_model(mlflow_python, live_server, scans_in_process):
    user = UserFactory(username="trainer")
    _, token = account_services.api_key_create(actor=user, user=user, name="mlflow", scope="write")

    out = run_client(mlflow_python, TRAINING_SCRIPT, url=live_server.url, token=token)

    assert out["versions"] == [["1", out["runs"][0]], ["2", out["runs"][1]]]
    assert out["aliases"] == {"champion": "2"}
    assert out["tags"] == {"team": "growth"} and out["version_tags"] == {"validated": "yes"}
    assert out["same_predictions"] and out["first_predictions"]
    assert {"MLmodel", "model.skops", "requirements.txt", "python_env.yaml"} <= set(out["downloaded"])
    assert out["local_source"] == "INVALID_PARAMETER_VALUE"
    model = MLModel.objects.get(name="client-churn")
    version = model.versions.select_related("run").get(version_number=2)
    # The client writes registered_model_meta itself, next to the files it downloaded.
    assert set(version.files.values_list("path", flat=True)) == set(out["downloaded"]) - {"registered_model_meta"}
    assert version.run.run_id == out["runs"][1] and 0.9 < version.accuracy <= 1.0
    # A folder as MLflow 3 saves a scikit-learn model (skops, YAML, JSON) scans as no error.
    version.refresh_from_db()
    assert version.scan_status in ("clean", "unknown") and version.artifact_format
