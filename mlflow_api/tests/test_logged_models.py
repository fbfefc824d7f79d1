"""MLflow 3's logged models (mlflow_api/logged_models.py) and model-versions/create from them or from
a run's artifacts (mlflow_api/sources.py): what log_model(..., registered_model_name=…) calls."""

import io

import pytest

from experiments.models import LoggedModel, LoggedModelStatus
from experiments.tests.factories import ExperimentFactory
from mlmodels.models import MLModel, ModelVersion
from mlmodels.storage import artifact_keys, artifact_open_stream, artifact_store

pytestmark = pytest.mark.django_db
API = "/api/2.0/mlflow"
FILES = {"MLmodel": b"flavors:\n  sklearn: {}\n", "model.pkl": b"\x80\x05N.", "nested/requirements.txt": b"x==1\n"}


def _run(api, experiment_id: str, **metrics) -> str:
    run_id = api.post(f"{API}/runs/create", {"experiment_id": experiment_id}, format="json").json()["run"]["info"][
        "run_id"
    ]
    logged = [{"key": k, "value": v, "timestamp": 1, "step": 0} for k, v in metrics.items()]
    api.post(f"{API}/runs/log-batch", {"run_id": run_id, "metrics": logged}, format="json")
    return run_id


def _logged_model(api, experiment_id: str, run_id: str, *, files=FILES, finalize=True) -> dict:
    made = api.post(
        f"{API}/logged-models",
        {
            "experiment_id": experiment_id,
            "name": "model",
            "source_run_id": run_id,
            "params": [{"key": "C", "value": "1.0"}],
            "tags": [{"key": "mlflow.source.name", "value": "train.py"}],
        },
        format="json",
    )
    assert made.status_code == 200, made.json()
    info = made.json()["model"]["info"]
    logged_model = LoggedModel.objects.select_related("experiment").get(model_id=info["model_id"])
    for path, content in files.items():
        artifact_store(key=f"{logged_model.artifact_prefix}/{path}", source=io.BytesIO(content))
    if finalize:
        done = api.patch(
            f"{API}/logged-models/{info['model_id']}",
            {"model_id": info["model_id"], "status": "LOGGED_MODEL_READY"},
            format="json",
        )
        assert done.status_code == 200, done.json()
        info = done.json()["model"]["info"]
    return info


@pytest.fixture
def experiment(user):
    return ExperimentFactory(owner=user, name="churn")


def test_a_logged_model_is_created_pending_read_finalized_tagged_and_deleted(owner_api, experiment):
    run_id = _run(owner_api, str(experiment.pk), accuracy=0.9)
    info = _logged_model(owner_api, str(experiment.pk), run_id, finalize=False)
    model_id = info["model_id"]

    got = owner_api.get(f"{API}/logged-models/{model_id}").json()["model"]
    finalized = owner_api.patch(
        f"{API}/logged-models/{model_id}", {"model_id": model_id, "status": "LOGGED_MODEL_READY"}, format="json"
    )
    tagged = owner_api.patch(
        f"{API}/logged-models/{model_id}/tags",
        {"tags": [{"key": "mlflow.modelVersions", "value": "[]"}]},
        format="json",
    )
    params = owner_api.post(
        f"{API}/logged-models/{model_id}/params", {"params": [{"key": "D", "value": "2"}]}, format="json"
    )
    untagged = owner_api.delete(f"{API}/logged-models/{model_id}/tags/mlflow.source.name")
    missing_tag = owner_api.delete(f"{API}/logged-models/{model_id}/tags/never")
    after = owner_api.get(f"{API}/logged-models/{model_id}").json()["model"]
    found = owner_api.post(f"{API}/logged-models/search", {"experiment_ids": [str(experiment.pk)]}, format="json")
    deleted = owner_api.delete(f"{API}/logged-models/{model_id}")
    gone = owner_api.get(f"{API}/logged-models/{model_id}")
    kept = owner_api.get(f"{API}/logged-models/{model_id}", {"allow_deleted": "true"})

    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment.pk}/models/{model_id}/artifacts"
    assert got["info"]["source_run_id"] == run_id
    assert got["data"]["params"] == [{"key": "C", "value": "1.0"}]
    assert [(m["key"], m["value"], m["run_id"]) for m in got["data"]["metrics"]] == [("accuracy", 0.9, run_id)]
    assert finalized.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    assert tagged.status_code == params.status_code == untagged.status_code == 200
    assert missing_tag.status_code == 404 and missing_tag.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert after["info"]["tags"] == [{"key": "mlflow.modelVersions", "value": "[]"}]
    assert [p["key"] for p in after["data"]["params"]] == ["C", "D"]
    assert [m["info"]["model_id"] for m in found.json()["models"]] == [model_id]
    assert deleted.status_code == 200 and gone.status_code == 404 and kept.status_code == 200


def test_logged_model_refusals_use_mlflow_s_codes(owner_api, other_api, experiment):
    run_id = _run(owner_api, str(experiment.pk))
    info = _logged_model(owner_api, str(experiment.pk), run_id, finalize=False)
    model_id = info["model_id"]

    not_mine = other_api.patch(
        f"{API}/logged-models/{model_id}", {"model_id": model_id, "status": "LOGGED_MODEL_READY"}, format="json"
    )
    bad_status = owner_api.patch(
        f"{API}/logged-models/{model_id}", {"model_id": model_id, "status": "LOGGED_MODEL_PENDING"}, format="json"
    )
    changed_param = owner_api.post(
        f"{API}/logged-models/{model_id}/params", {"params": [{"key": "C", "value": "9"}]}, format="json"
    )
    unknown = owner_api.get(f"{API}/logged-models/m-{'0' * 32}")
    malformed = owner_api.get(f"{API}/logged-models/..%2F..%2Fetc")
    wrong_method = owner_api.put(f"{API}/logged-models/{model_id}", {}, format="json")
    other_experiment = ExperimentFactory(owner=experiment.owner)
    wrong_run = owner_api.post(
        f"{API}/logged-models",
        {"experiment_id": str(other_experiment.pk), "source_run_id": run_id},
        format="json",
    )
    filtered = owner_api.post(
        f"{API}/logged-models/search", {"experiment_ids": [str(experiment.pk)], "filter": "x = 1"}, format="json"
    )
    ordered = owner_api.post(
        f"{API}/logged-models/search",
        {"experiment_ids": [str(experiment.pk)], "order_by": [{"field_name": "metrics.accuracy"}]},
        format="json",
    )

    assert not_mine.status_code == 403 and not_mine.json()["error_code"] == "PERMISSION_DENIED"
    assert bad_status.status_code == 400 and "finalized as one of" in bad_status.json()["message"]
    assert (
        changed_param.status_code == 400 and "Changing param values is not allowed" in changed_param.json()["message"]
    )
    assert unknown.status_code == malformed.status_code == 404
    assert wrong_method.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert wrong_run.status_code == 400
    assert filtered.status_code == 400 and "Invalid attribute key" in filtered.json()["message"]
    assert ordered.status_code == 501 and ordered.json()["error_code"] == "NOT_IMPLEMENTED"
    assert LoggedModel.objects.get(model_id=model_id).status == LoggedModelStatus.PENDING


def test_log_model_s_registration_copies_the_logged_model_and_links_the_run(owner_api, user, experiment):
    run_id = _run(owner_api, str(experiment.pk), accuracy=0.91, f1=0.8, loss=2.5)
    info = _logged_model(owner_api, str(experiment.pk), run_id)
    owner_api.post(f"{API}/registered-models/create", {"name": "churn"}, format="json")

    created = owner_api.post(
        f"{API}/model-versions/create",
        {
            "name": "churn",
            "source": f"models:/{info['model_id']}",
            "run_id": run_id,
            "model_id": info["model_id"],
            "tags": [{"key": "trained_by", "value": "ci"}],
            "description": "first",
        },
        format="json",
    )
    second = owner_api.post(
        f"{API}/model-versions/create",
        {"name": "churn", "source": f"mlflow-artifacts:/{experiment.pk}/models/{info['model_id']}/artifacts"},
        format="json",
    )
    uri = owner_api.get(f"{API}/model-versions/get-download-uri", {"name": "churn", "version": "1"})

    assert created.status_code == 200, created.json()
    shown = created.json()["model_version"]
    assert (shown["version"], shown["run_id"], shown["description"]) == ("1", run_id, "first")
    assert shown["tags"] == [{"key": "trained_by", "value": "ci"}]
    assert second.json()["model_version"]["version"] == "2"
    assert uri.json()["artifact_uri"].endswith(f"/registry/models/{MLModel.objects.get().pk}/versions/1")
    version = ModelVersion.objects.select_related("run").get(model__name="churn", version_number=1)
    assert version.run.run_id == run_id and version.experiment_id == experiment.pk
    assert (version.accuracy, version.f1_score, version.precision) == (0.91, 0.8, None)
    stored = {f.path: f for f in version.files.all()}
    assert set(stored) == set(FILES)
    for path, content in FILES.items():
        assert stored[path].key.startswith(f"users/{user.pk}/models/")
        with artifact_open_stream(stored[path].key) as stream:
            assert stream.read() == content


def test_a_version_registers_from_a_run_s_artifacts_folder(owner_api, user, experiment):
    run_id = _run(owner_api, str(experiment.pk), precision=0.7)
    prefix = f"users/{user.pk}/runs/{run_id}/artifacts"
    for path, content in FILES.items():
        artifact_store(key=f"{prefix}/model/{path}", source=io.BytesIO(content))
    owner_api.post(f"{API}/registered-models/create", {"name": "churn"}, format="json")

    by_uri = owner_api.post(
        f"{API}/model-versions/create",
        {"name": "churn", "source": f"mlflow-artifacts:/{experiment.pk}/{run_id}/artifacts/model", "run_id": run_id},
        format="json",
    )
    by_runs_uri = owner_api.post(
        f"{API}/model-versions/create", {"name": "churn", "source": f"runs:/{run_id}/model"}, format="json"
    )

    assert by_uri.status_code == 200, by_uri.json()
    assert by_runs_uri.json()["model_version"]["run_id"] == run_id
    version = ModelVersion.objects.get(model__name="churn", version_number=2)
    assert version.precision == 0.7 and set(version.files.values_list("path", flat=True)) == set(FILES)


@pytest.mark.parametrize(
    "source",
    [
        "/etc/passwd",
        "file:///etc/passwd",
        "file:/home/user/model",
        "s3://someone-elses-bucket/model",
        "http://169.254.169.254/latest/meta-data",
        "https://evil.example/model.pkl",
        "mlflow-artifacts:/registry/models/1/versions/1",
        "mlflow-artifacts://evil.example/1/abc/artifacts",
        "models:/churn/1",
        "runs:/{run_id}/../../../other",
        "runs:/{run_id}/model/%2e%2e/%2e%2e",
        "runs:/{run_id}/model/..",
        "runs:/{run_id}/model\\..\\..",
        "runs:/{run_id}/model\x00",
        "mlflow-artifacts:/{experiment}/{run_id}/artifacts/../../../../etc",
        "mlflow-artifacts:/{experiment}/{run_id}/artifacts//model",
        "users/{user}/models/1/v1",
        "",
    ],
)
def test_a_source_outside_our_storage_or_with_a_traversal_is_refused(owner_api, user, experiment, source):
    run_id = _run(owner_api, str(experiment.pk))
    artifact_store(key=f"users/{user.pk}/runs/{run_id}/artifacts/model/MLmodel", source=io.BytesIO(b"x"))
    owner_api.post(f"{API}/registered-models/create", {"name": "churn"}, format="json")
    keys_before = set(artifact_keys())

    refused = owner_api.post(
        f"{API}/model-versions/create",
        {"name": "churn", "source": source.format(run_id=run_id, experiment=experiment.pk, user=user.pk)},
        format="json",
    )

    assert refused.status_code in (400, 404), refused.content
    assert refused.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert not ModelVersion.objects.filter(model__name="churn").exists()
    assert set(artifact_keys()) == keys_before


def test_registration_refusals_leave_nothing_behind(owner_api, other_api, user, experiment):
    run_id = _run(owner_api, str(experiment.pk))
    pending = _logged_model(owner_api, str(experiment.pk), run_id, finalize=False)
    ready = _logged_model(owner_api, str(experiment.pk), run_id)
    empty_run = _run(owner_api, str(experiment.pk))
    owner_api.post(f"{API}/registered-models/create", {"name": "churn"}, format="json")
    keys_before = set(artifact_keys())

    def create(api, **fields):
        return api.post(f"{API}/model-versions/create", {"name": "churn", **fields}, format="json")

    not_finalized = create(owner_api, source=f"models:/{pending['model_id']}")
    not_mine = create(other_api, source=f"models:/{ready['model_id']}")
    no_files = create(owner_api, source=f"runs:/{empty_run}/model")
    other_run = create(owner_api, source=f"models:/{ready['model_id']}", run_id=empty_run)
    unknown_model = create(owner_api, source=f"models:/m-{'a' * 32}")
    bad_tag = create(owner_api, source=f"models:/{ready['model_id']}", tags=[{"key": "", "value": "x"}])
    no_model = owner_api.post(
        f"{API}/model-versions/create", {"name": "nope", "source": f"models:/{ready['model_id']}"}, format="json"
    )

    assert not_finalized.status_code == 400 and "LOGGED_MODEL_READY" in not_finalized.json()["message"]
    assert not_mine.status_code == 403
    assert no_files.status_code == 400 and "No stored files" in no_files.json()["message"]
    assert other_run.status_code == 400
    assert unknown_model.status_code == 404
    assert bad_tag.status_code == 400
    assert no_model.status_code == 404
    assert not ModelVersion.objects.filter(model__name="churn").exists()
    assert set(artifact_keys()) == keys_before


def test_a_registered_model_made_through_mlflow_starts_without_versions(owner_api):
    made = owner_api.post(f"{API}/registered-models/create", {"name": "churn"}, format="json")
    latest = owner_api.post(f"{API}/registered-models/get-latest-versions", {"name": "churn"}, format="json")

    assert made.status_code == 200
    assert MLModel.objects.get(name="churn").latest_version == 0
    assert latest.json().get("model_versions", []) == []


def test_runs_outputs_links_a_logged_model_made_without_a_run(owner_api, other_api, experiment):
    run_id = _run(owner_api, str(experiment.pk))
    made = owner_api.post(f"{API}/logged-models", {"experiment_id": str(experiment.pk)}, format="json").json()
    model_id = made["model"]["info"]["model_id"]

    not_mine = other_api.post(
        f"{API}/runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id}]}, format="json"
    )
    linked = owner_api.post(
        f"{API}/runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]}, format="json"
    )
    unknown = owner_api.post(
        f"{API}/runs/outputs", {"run_id": run_id, "models": [{"model_id": f"m-{'b' * 32}"}]}, format="json"
    )

    assert not_mine.status_code == 403
    assert linked.status_code == 200
    assert unknown.status_code == 404
    assert LoggedModel.objects.get(model_id=model_id).source_run.run_id == run_id


def test_the_model_page_links_a_version_to_its_run_and_the_run_page_back(owner_api, owner_client, experiment):
    run_id = _run(owner_api, str(experiment.pk), accuracy=0.9)
    info = _logged_model(owner_api, str(experiment.pk), run_id)
    owner_api.post(f"{API}/registered-models/create", {"name": "churn"}, format="json")
    owner_api.post(
        f"{API}/model-versions/create", {"name": "churn", "source": f"models:/{info['model_id']}"}, format="json"
    )
    model = MLModel.objects.get(name="churn")

    model_page = owner_client.get(f"/models/{model.pk}/").content.decode()
    run_page = owner_client.get(f"/experiments/{experiment.pk}/runs/{run_id}/").content.decode()

    assert f'href="/experiments/{experiment.pk}/runs/{run_id}/"' in model_page
    assert "<code>MLmodel</code>" in model_page and "<code>nested/requirements.txt</code>" in model_page
    assert f'href="/models/{model.pk}/#version-1">churn v1</a>' in run_page
    assert f"model · {info['model_id']}" in run_page  # the logged model the run made


def test_logged_models_are_searched_by_name_run_status_and_tags_as_the_client_does(owner_api, experiment):
    first_run, second_run = _run(owner_api, str(experiment.pk)), _run(owner_api, str(experiment.pk))
    first = _logged_model(owner_api, str(experiment.pk), first_run)
    second = _logged_model(owner_api, str(experiment.pk), second_run, finalize=False)

    def found(text):
        answer = owner_api.post(
            f"{API}/logged-models/search", {"experiment_ids": [str(experiment.pk)], "filter": text}, format="json"
        )
        assert answer.status_code == 200, answer.json()
        return {m["info"]["model_id"] for m in answer.json().get("models", [])}

    # What the client's RunsArtifactRepository and register_model send.
    assert found("name = 'model'") == {first["model_id"], second["model_id"]}
    assert found(f"source_run_id = '{first_run}'") == {first["model_id"]}
    assert found("status = 'LOGGED_MODEL_READY'") == {first["model_id"]}
    assert found("tags.`mlflow.source.name` LIKE 'train%' AND name != 'other'") == {
        first["model_id"],
        second["model_id"],
    }
    assert found("tags.`mlflow.source.name` = 'elsewhere.py'") == set()
