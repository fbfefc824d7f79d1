"""MLflow's artifact proxy (/api/2.0/mlflow-artifacts/…) through the Django test client, as the
official client calls it (mlflow/store/artifact/http_artifact_repo.py): one PUT per file with the
file as the body, GET ``artifacts?path=`` to list one level, GET to download, DELETE.

Whichever storage the run is configured for (local files, or S3 in the services run) is looked at
through the storage helpers.
"""

from __future__ import annotations

import gc
import hashlib
import io
import tracemalloc
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from experiments import artifacts as artifact_services
from experiments.models import ArtifactFile, LifecycleStage, LoggedModel
from experiments.tests.factories import ExperimentFactory, RunFactory
from mlmodels import services as model_services
from mlmodels.storage import StorageUnavailable, artifact_keys, artifact_open_stream
from mlmodels.tests.factories import MLModelFactory

pytestmark = pytest.mark.django_db

API = "/api/2.0/mlflow-artifacts/artifacts"
MIB = 1024 * 1024


@pytest.fixture
def experiment(user):
    return ExperimentFactory(owner=user)


@pytest.fixture
def run(experiment):
    return RunFactory(experiment=experiment)


@pytest.fixture
def logged_model(experiment, run):
    return LoggedModel.objects.create(
        experiment=experiment, user=experiment.owner, source_run=run, name="model", creation_time=1, last_updated_time=1
    )


@pytest.fixture
def api(owner_api) -> APIClient:
    return owner_api


def root_of(run) -> str:
    return f"{run.experiment_id}/{run.run_id}/artifacts"


def put(client, path: str, content: bytes, **extra):
    return client.generic("PUT", f"{API}/{path}", content, content_type="application/octet-stream", **extra)


def listed(client, path: str | None, base: str = API):
    return client.get(base, {} if path is None else {"path": path})


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


def stored(prefix: str) -> set[str]:
    return set(artifact_keys(prefix))


def owner_root(run) -> str:
    return f"users/{run.experiment.owner_id}/runs/{run.run_id}"


# --- round trips ----------------------------------------------------------------------------------


def test_upload_list_download_round_trip(api, run):
    root = root_of(run)
    files = {"MLmodel": b"flavors: {}\n", "model.skops": b"\x00weights" * 100, "sub/dir/notes.txt": b"notes"}
    for path, content in files.items():
        response = put(api, f"{root}/{path}", content)
        assert response.status_code == 200, response.content
        assert response.json() == {}

    assert listed(api, root).json() == {
        "files": [
            {"path": "MLmodel", "is_dir": False, "file_size": 12},
            {"path": "model.skops", "is_dir": False, "file_size": 800},
            {"path": "sub", "is_dir": True},
        ]
    }
    assert listed(api, f"{root}/sub").json() == {"files": [{"path": "dir", "is_dir": True}]}
    assert listed(api, f"{root}/sub/dir").json() == {"files": [{"path": "notes.txt", "is_dir": False, "file_size": 5}]}
    # A file, an empty or missing folder: MLflow answers {}.
    assert listed(api, f"{root}/MLmodel").json() == {}
    assert listed(api, f"{root}/nothing-here").json() == {}

    response = api.get(f"{API}/{root}/model.skops")
    assert response.status_code == 200
    assert response["Content-Length"] == "800"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert body_of(response) == files["model.skops"]

    rows = {row.path: row for row in ArtifactFile.objects.filter(run=run)}
    assert set(rows) == set(files)
    for path, content in files.items():
        assert rows[path].key == f"{run.artifact_prefix}/{path}"
        assert rows[path].sha256 == hashlib.sha256(content).hexdigest()
    assert stored(owner_root(run)) == {row.key for row in rows.values()}


def test_the_ajax_api_prefix_serves_the_same_files(api, run):
    root = root_of(run)
    assert api.generic("PUT", f"/ajax-api/2.0/mlflow-artifacts/artifacts/{root}/a.txt", b"a").status_code == 200

    assert listed(api, root, base="/ajax-api/2.0/mlflow-artifacts/artifacts").json() == {
        "files": [{"path": "a.txt", "is_dir": False, "file_size": 1}]
    }
    assert body_of(api.get(f"{API}/{root}/a.txt")) == b"a"


def test_an_overwrite_replaces_the_bytes_and_leaves_one_object(api, run, django_capture_on_commit_callbacks):
    root = root_of(run)
    put(api, f"{root}/model.pkl", b"old bytes")
    with django_capture_on_commit_callbacks(execute=True):
        assert put(api, f"{root}/model.pkl", b"new, longer bytes").status_code == 200

    row = ArtifactFile.objects.get(run=run)
    assert (row.size, row.sha256) == (17, hashlib.sha256(b"new, longer bytes").hexdigest())
    assert body_of(api.get(f"{API}/{root}/model.pkl")) == b"new, longer bytes"
    assert stored(owner_root(run)) == {row.key}
    audit = model_services.storage_audit(min_age=_no_age(), prefix=f"users/{run.experiment.owner_id}")
    assert (audit.orphans, audit.missing) == ([], [])


def _no_age():
    from datetime import timedelta

    return timedelta(0)


def test_delete_a_file_a_folder_and_everything(api, run, django_capture_on_commit_callbacks):
    root = root_of(run)
    for path in ("a.txt", "sub/b.txt", "sub/deeper/c.txt", "other/d.txt"):
        put(api, f"{root}/{path}", path.encode())

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"{API}/{root}/a.txt").status_code == 200
    assert sorted(ArtifactFile.objects.values_list("path", flat=True)) == [
        "other/d.txt",
        "sub/b.txt",
        "sub/deeper/c.txt",
    ]

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"{API}/{root}/sub").json() == {}
    assert list(ArtifactFile.objects.values_list("path", flat=True)) == ["other/d.txt"]
    assert stored(owner_root(run)) == {f"{run.artifact_prefix}/other/d.txt"}

    # Nothing there is no error (MLflow's delete is idempotent); the client's delete_artifacts()
    # names the root with a trailing slash.
    assert api.delete(f"{API}/{root}/a.txt").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"{API}/{root}/").status_code == 200
    assert not ArtifactFile.objects.exists()
    assert stored(owner_root(run)) == set()
    assert listed(api, root).json() == {}


def test_a_logged_models_artifacts_round_trip(api, logged_model):
    root = f"{logged_model.experiment_id}/models/{logged_model.model_id}/artifacts"
    assert put(api, f"{root}/MLmodel", b"flavors: {}\n").status_code == 200
    assert put(api, f"{root}/model.skops", b"weights").status_code == 200

    assert listed(api, root).json() == {
        "files": [
            {"path": "MLmodel", "is_dir": False, "file_size": 12},
            {"path": "model.skops", "is_dir": False, "file_size": 7},
        ]
    }
    assert body_of(api.get(f"{API}/{root}/model.skops")) == b"weights"
    row = ArtifactFile.objects.get(logged_model=logged_model, path="model.skops")
    assert (
        row.key
        == f"users/{logged_model.experiment.owner_id}/logged-models/{logged_model.model_id}/artifacts/model.skops"
    )
    assert row.run_id is None


def test_a_64_mib_upload_and_download_stream_without_holding_the_file(api, run):
    size = 64 * MIB

    class Zeros(io.RawIOBase):
        """A request body produced as it is read (the test holds no copy of it either)."""

        def __init__(self):
            self.left = size

        def read(self, n=-1):
            n = self.left if n is None or n < 0 else min(n, self.left)
            self.left -= n
            return b"\x00" * n

    url = f"{API}/{root_of(run)}/big.bin"
    # Once per process, not per file: the storage client and (on S3) botocore's service models.
    assert put(api, f"{root_of(run)}/warm-up.txt", b"x").status_code == 200
    body_of(api.get(f"{API}/{root_of(run)}/warm-up.txt"))
    gc.collect()
    tracemalloc.start()
    try:
        response = api.generic("PUT", url, CONTENT_LENGTH=str(size), **{"wsgi.input": Zeros()})
        upload_peak = tracemalloc.get_traced_memory()[1]
        assert response.status_code == 200, response.content
        gc.collect()
        tracemalloc.reset_peak()
        response = api.get(url)
        digest, count = hashlib.sha256(), 0
        for chunk in response.streaming_content:
            digest.update(chunk)
            count += len(chunk)
        download_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert count == size and response["Content-Length"] == str(size)
    expected = hashlib.sha256(b"\x00" * size).hexdigest()
    assert digest.hexdigest() == expected == ArtifactFile.objects.get(run=run, path="big.bin").sha256
    # Bounded by the chunk sizes, not the file's: a 1 MiB read for local files; on S3 the transfer
    # manager's parts (8 MiB, two buffered while one is read: settings' transfer config).
    assert upload_peak < 32 * MIB, upload_peak / MIB
    assert download_peak < 8 * MIB, download_peak / MIB


# --- the registry's versions: read-only --------------------------------------------------------------


def test_a_folder_versions_files_list_and_download_read_only(api, other_api, user):
    model = MLModelFactory(owner=user)
    files = [("MLmodel", io.BytesIO(b"flavors: {}\n")), ("data/model.pkl", io.BytesIO(b"pickle"))]
    version = model_services.version_create_with_files(model=model, actor=user, files=files)
    root = f"registry/models/{model.pk}/versions/{version.version_number}"

    # Anyone signed in reads it.
    assert listed(other_api, root).json() == {
        "files": [{"path": "MLmodel", "is_dir": False, "file_size": 12}, {"path": "data", "is_dir": True}]
    }
    assert listed(other_api, f"{root}/data").json() == {
        "files": [{"path": "model.pkl", "is_dir": False, "file_size": 6}]
    }
    response = other_api.get(f"{API}/{root}/data/model.pkl")
    assert (response["Content-Length"], body_of(response)) == ("6", b"pickle")
    assert other_api.get(f"{API}/{root}/nope").status_code == 404

    # Nobody writes it, its owner included.
    for response in (
        put(api, f"{root}/MLmodel", b"x"),
        api.delete(f"{API}/{root}/MLmodel"),
        api.delete(f"{API}/{root}"),
    ):
        assert response.status_code == 403
        assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert body_of(api.get(f"{API}/{root}/MLmodel")) == b"flavors: {}\n"


def test_a_single_file_version_lists_as_its_file(api, user):
    model = MLModelFactory(owner=user)
    data = io.BytesIO(b"weights")
    data.name = "model.joblib"
    version = model_services.model_attach_file(model=model, actor=user, file=data)
    root = f"registry/models/{model.pk}/versions/{version.version_number}"

    assert listed(api, root).json() == {"files": [{"path": "model.joblib", "is_dir": False, "file_size": 7}]}
    assert body_of(api.get(f"{API}/{root}/model.joblib")) == b"weights"
    assert api.get(f"{API}/{root}/other.joblib").status_code == 404
    # Version 1 was made without a file: nothing to list.
    assert listed(api, f"registry/models/{model.pk}/versions/1").json() == {}
    assert listed(api, f"registry/models/{model.pk}/versions/99").status_code == 404


# --- access ---------------------------------------------------------------------------------------


def test_anonymous_requests_are_refused(api_client, run):
    root = root_of(run)
    for response in (
        api_client.get(API, {"path": root}),
        api_client.get(f"{API}/{root}/a.txt"),
        put(api_client, f"{root}/a.txt", b"x"),
        api_client.delete(f"{API}/{root}/a.txt"),
    ):
        assert response.status_code == 401
        assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert not ArtifactFile.objects.exists()


def test_another_users_run_is_read_but_not_written(api, other_api, run):
    root = root_of(run)
    put(api, f"{root}/a.txt", b"mine")

    assert body_of(other_api.get(f"{API}/{root}/a.txt")) == b"mine"
    assert listed(other_api, root).json()["files"][0]["path"] == "a.txt"
    for response in (put(other_api, f"{root}/a.txt", b"theirs"), other_api.delete(f"{API}/{root}/a.txt")):
        assert response.status_code == 403
        assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert body_of(api.get(f"{API}/{root}/a.txt")) == b"mine"


def test_a_read_only_api_key_reads_but_never_writes(user, run):
    from accounts import services as account_services

    root = root_of(run)
    clients = {}
    for scope in ("read", "write"):
        _, raw = account_services.api_key_create(actor=user, user=user, name=f"mlflow-{scope}", scope=scope)
        clients[scope] = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert put(clients["write"], f"{root}/a.txt", b"x").status_code == 200

    for response in (put(clients["read"], f"{root}/b.txt", b"y"), clients["read"].delete(f"{API}/{root}/a.txt")):
        assert response.status_code == 403
        assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert body_of(clients["read"].get(f"{API}/{root}/a.txt")) == b"x"
    assert list(ArtifactFile.objects.values_list("path", flat=True)) == ["a.txt"]


def test_a_wrong_experiment_id_or_unknown_owner_is_not_found(api, run, logged_model):
    other = ExperimentFactory(owner=run.experiment.owner)
    put(api, f"{root_of(run)}/a.txt", b"x")
    for path in (
        f"{other.pk}/{run.run_id}/artifacts",
        f"{other.pk}/models/{logged_model.model_id}/artifacts",
        f"{run.experiment_id}/{'0' * 32}/artifacts",
        f"{run.experiment_id}/{run.run_id}/not-artifacts",
        f"0{run.experiment_id}/{run.run_id}/artifacts",
        f"{run.experiment_id}",
        "registry/models/x/versions/1",
        "elsewhere/a/b",
    ):
        for response in (listed(api, path), api.get(f"{API}/{path}/a.txt"), put(api, f"{path}/a.txt", b"y")):
            assert response.status_code == 404, (path, response.content)
            assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert listed(api, None).status_code == 404
    assert ArtifactFile.objects.count() == 1


def test_a_deleted_run_refuses_writes_but_reads(api, run):
    root = root_of(run)
    put(api, f"{root}/a.txt", b"x")
    run.lifecycle_stage = LifecycleStage.DELETED
    run.save()

    for response in (put(api, f"{root}/b.txt", b"y"), api.delete(f"{API}/{root}/a.txt")):
        assert response.status_code == 400
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "must be in the 'active' state" in response.json()["message"]
    assert body_of(api.get(f"{API}/{root}/a.txt")) == b"x"


# --- hostile paths ----------------------------------------------------------------------------------

# Each as it would be sent in the URL (percent-encoded where a client could); the test client decodes
# the URL once, as a WSGI server does, and ``?path=`` is the same text sent as a query value.
HOSTILE = [
    "..",
    "../../../etc/passwd",
    "sub/../../other",
    "%2e%2e/x",
    "%2E%2E%2Fx",
    "..%2F..%2Fx",
    "%252e%252e/x",
    "%252e%252e%252fx",
    "a%25b",
    "a%5Cb",
    "..%5C..%5Cx",
    "a%00b",
    "a%0Ab",
    "a%1Fb",
    "a%7Fb",
    "a//b",
    ".",
    "./x",
    "a%E2%80%AEb",  # a right-to-left override
    "a%23b",
    "a%3Fb",
    "C:%5Cwindows",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_paths_are_refused_in_the_url_and_in_the_query(api, run, hostile):
    root = root_of(run)
    put(api, f"{root}/a.txt", b"x")
    responses = [
        put(api, f"{root}/{hostile}", b"evil"),
        api.get(f"{API}/{root}/{hostile}"),
        api.delete(f"{API}/{root}/{hostile}"),
        api.get(f"{API}?path={quote(root, safe='')}%2F{hostile}"),
    ]
    for response in responses:
        assert response.status_code == 400, (hostile, response.status_code, response.content)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert list(ArtifactFile.objects.values_list("path", flat=True)) == ["a.txt"]
    assert stored(f"users/{run.experiment.owner_id}") == {f"{run.artifact_prefix}/a.txt"}


@pytest.mark.parametrize("hostile", ["%2Fetc%2Fpasswd", "/etc/passwd", "%5Cetc", "registry/../1"])
def test_absolute_and_rootless_paths_are_refused(api, hostile):
    for response in (put(api, hostile, b"x"), api.get(f"{API}/{hostile}"), api.get(f"{API}?path={hostile}")):
        assert response.status_code == 400, (hostile, response.content)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not ArtifactFile.objects.exists()


def test_a_path_cannot_reach_another_runs_files(api, experiment, run):
    neighbour = RunFactory(experiment=experiment)
    put(api, f"{root_of(neighbour)}/secret.txt", b"neighbour's")

    response = put(api, f"{root_of(run)}/../../{neighbour.run_id}/artifacts/secret.txt", b"overwritten")
    assert response.status_code == 400
    response = put(api, f"{root_of(run)}/..%2F..%2F{neighbour.run_id}%2Fartifacts%2Fsecret.txt", b"overwritten")
    assert response.status_code == 400
    assert body_of(api.get(f"{API}/{root_of(neighbour)}/secret.txt")) == b"neighbour's"
    assert not ArtifactFile.objects.filter(run=run).exists()


def test_a_file_and_a_folder_cannot_share_a_path(api, run):
    root = root_of(run)
    put(api, f"{root}/a", b"file")
    assert put(api, f"{root}/a/b", b"x").status_code == 400
    put(api, f"{root}/c/d", b"x")
    assert put(api, f"{root}/c", b"x").status_code == 400
    assert api.get(f"{API}/{root}/c").json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert sorted(ArtifactFile.objects.values_list("path", flat=True)) == ["a", "c/d"]


# --- limits and failures ----------------------------------------------------------------------------


def test_a_body_over_the_size_limit_is_refused_and_stores_nothing(api, run, settings):
    settings.MAX_UPLOAD_BYTES = 10
    response = put(api, f"{root_of(run)}/big.bin", b"x" * 11)

    assert response.status_code == 413
    assert response.json()["error_code"] == "RESOURCE_EXHAUSTED"
    assert put(api, f"{root_of(run)}/ok.bin", b"x" * 10).status_code == 200
    assert list(ArtifactFile.objects.values_list("path", flat=True)) == ["ok.bin"]
    assert stored(owner_root(run)) == {f"{run.artifact_prefix}/ok.bin"}


def test_a_body_over_a_mebibyte_passes_the_request_size_middleware(api, run):
    # Every other JSON endpoint refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE (1 MiB) up front.
    content = b"y" * (3 * MIB)
    assert put(api, f"{root_of(run)}/weights.bin", content).status_code == 200
    assert ArtifactFile.objects.get(run=run).size == 3 * MIB


def test_a_body_shorter_than_announced_stores_nothing(api, run):
    # A client that went away: the body ends (a WSGI server reads b"") before its Content-Length.
    url = f"{API}/{root_of(run)}/cut.bin"
    response = api.generic("PUT", url, CONTENT_LENGTH="100", **{"wsgi.input": io.BytesIO(b"only this")})

    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert not ArtifactFile.objects.exists()
    assert stored(owner_root(run)) == set()


def test_an_upload_without_a_content_length_is_refused(api, run):
    response = api.generic("PUT", f"{API}/{root_of(run)}/a.bin", b"", HTTP_TRANSFER_ENCODING="chunked")

    assert response.status_code == 400
    assert "Content-Length" in response.json()["message"]
    assert not ArtifactFile.objects.exists()


def _broken_move(**kwargs):
    raise StorageUnavailable("Artifact storage is unavailable (move the file failed); nothing was changed.")


def test_a_storage_failure_leaves_no_row_and_no_object(api, run, monkeypatch):
    root = root_of(run)
    put(api, f"{root}/kept.txt", b"old")
    monkeypatch.setattr(artifact_services, "artifact_move", _broken_move)

    new = put(api, f"{root}/new.txt", b"new")
    overwrite = put(api, f"{root}/kept.txt", b"replacement")

    for response in (new, overwrite):
        assert response.status_code == 503
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    row = ArtifactFile.objects.get(run=run)
    assert (row.path, row.sha256) == ("kept.txt", hashlib.sha256(b"old").hexdigest())
    assert stored(owner_root(run)) == {row.key}  # no staged object left behind
    with artifact_open_stream(row.key) as stream:
        assert stream.read() == b"old"


def test_a_storage_failure_while_storing_leaves_nothing(api, run, monkeypatch):
    def broken_store(*, key, source):
        raise StorageUnavailable("Artifact storage is unavailable (store the file failed); nothing was changed.")

    monkeypatch.setattr(artifact_services, "artifact_store", broken_store)
    response = put(api, f"{root_of(run)}/a.txt", b"x")

    assert response.status_code == 503
    assert not ArtifactFile.objects.exists()
    assert stored(owner_root(run)) == set()


def test_storage_audit_sees_no_orphans_after_uploads_overwrites_and_deletes(
    api, run, logged_model, django_capture_on_commit_callbacks
):
    root = root_of(run)
    model_root = f"{logged_model.experiment_id}/models/{logged_model.model_id}/artifacts"
    with django_capture_on_commit_callbacks(execute=True):
        for path in ("a.txt", "b/c.txt", "b/d.txt"):
            put(api, f"{root}/{path}", b"1")
            put(api, f"{model_root}/{path}", b"1")
        put(api, f"{root}/a.txt", b"22")
        api.delete(f"{API}/{root}/b")
        api.delete(f"{API}/{model_root}/b/c.txt")

    audit = model_services.storage_audit(min_age=_no_age(), prefix=f"users/{run.experiment.owner_id}")
    assert (audit.orphans, audit.missing) == ([], [])
    assert len(stored(f"users/{run.experiment.owner_id}")) == ArtifactFile.objects.count() == 3


# --- what is not offered ----------------------------------------------------------------------------


def test_multipart_and_presigned_calls_answer_mlflows_not_implemented(api, api_client, run):
    root = root_of(run)
    for action in ("create", "complete", "abort"):
        response = api.post(f"/api/2.0/mlflow-artifacts/mpu/{action}/{root}", {"path": "f", "num_parts": 1}, "json")
        assert response.status_code == 501
        # The client falls back to a plain PUT on exactly this message.
        assert response.json() == {
            "error_code": "NOT_IMPLEMENTED",
            "message": "Multipart upload is not supported for the current artifact repository",
        }
    response = api.get(f"/api/2.0/mlflow-artifacts/presigned/{root}/a.txt")
    assert (response.status_code, response.json()["error_code"]) == (501, "NOT_IMPLEMENTED")
    assert api_client.post(f"/api/2.0/mlflow-artifacts/mpu/create/{root}").status_code == 401

    response = api.get("/api/2.0/mlflow-artifacts/anything-else")
    assert (response.status_code, response.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    response = api.post(f"{API}/{root}/a.txt", {}, "json")
    assert (response.status_code, response.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")


@pytest.mark.parametrize("prefix", ["/api", "/ajax-api"])
def test_server_info_says_what_is_offered_to_anyone(api_client, prefix):
    response = api_client.get(f"{prefix}/3.0/mlflow/server-info")

    assert response.status_code == 200
    info = response.json()
    assert info["multipart_uploads_enabled"] is False
    assert info["multipart_downloads_enabled"] is False
    assert info["workspaces_enabled"] is False
    assert info["presigned_upload_run_id_supported"] is False
    assert info["presigned_upload_model_id_supported"] is False
    assert info["features_enabled"] == {"gateway": False}
    assert info["store_type"] is None
