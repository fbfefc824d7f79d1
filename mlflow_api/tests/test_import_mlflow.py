"""``manage.py import_mlflow`` against a real MLflow server (3.17.2, bench/.mlflow-venv, on SQLite with
its artifact proxy), filled through its own REST API: what it copies, object by object; a second run
copies nothing; a stopped run resumes; bad input is a CommandError or a "skipped" line."""

import base64
import hashlib
import io
import json
import pickle
import random
import threading
import urllib.error
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command

from accounts.tests.factories import UserFactory
from bench.import_mlflow import MlflowRest, SqliteMlflowServer
from bench.server import free_port
from experiments.models import Experiment, Run
from mlflow_api import importer as importer_module
from mlflow_api.importer import SOURCE_TAG, STAGE_TAG, Importer, MlflowClient, TqdmProgress, proxy_path
from mlmodels import services
from mlmodels.models import MLModel, ModelVersion, Stage, VersionFile
from mlmodels.storage import StorageUnavailable
from mlmodels.tests.factories import MLModelFactory

# A file larger than the importer's download chunk (1 MiB): it arrives in several pieces.
BIG = random.Random(7).randbytes(3 * 1024 * 1024 + 17)


def _pickle(value) -> bytes:
    return pickle.dumps(value, protocol=4)


CHURN_FILES = {
    "1": {
        "MLmodel": b"flavors:\n  python_function: {}\n",
        "model.pkl": _pickle({"w": [1, 2]}),
        "requirements.txt": b"x\n",
    },
    "2": {"MLmodel": b"flavors:\n  sklearn: {}\n", "model.pkl": _pickle({"w": [3]}), "data/vocab.txt": b"a\nb\n"},
    "3": {"MLmodel": b"flavors:\n  sklearn: {}\n", "weights.bin": BIG},
}
FRAUD_FILES = {"MLmodel": b"flavors: {}\n", "model.pkl": _pickle([0.5])}


class Source:
    """The MLflow server the tests import from, and what was put in it."""

    def __init__(self, url: str):
        self.url = url
        self.host = urlsplit(url).netloc


@pytest.fixture(scope="session")
def mlflow_source(tmp_path_factory) -> Source:
    directory = tmp_path_factory.mktemp("mlflow-source")
    with SqliteMlflowServer(directory) as server:
        rest = MlflowRest(server.url)
        experiment = rest.experiment(
            "churn-training",
            tags=[{"key": "team", "value": "growth"}, {"key": "mlflow.note.content", "value": "Churn experiments"}],
        )
        run = rest.run(experiment, "baseline", start_time=1_700_000_000_000, tags=[{"key": "owner", "value": "ana"}])
        rest.post(
            "runs/log-batch",
            {
                "run_id": run["run_id"],
                "params": [{"key": "lr", "value": "0.1"}, {"key": "depth", "value": "5"}],
                "metrics": [
                    {"key": "loss", "value": 0.9, "timestamp": 1_700_000_000_100, "step": 0},
                    {"key": "loss", "value": 0.5, "timestamp": 1_700_000_000_200, "step": 1},
                    {"key": "loss", "value": 0.3, "timestamp": 1_700_000_000_300, "step": 2},
                    {"key": "accuracy", "value": 0.8, "timestamp": 1_700_000_000_300, "step": 2},
                ],
            },
        )
        rest.post("runs/update", {"run_id": run["run_id"], "status": "FINISHED", "end_time": 1_700_000_060_000})

        rest.model("churn", description="Predicts churn", tags={"team": "growth", "domain": "retail"})
        rest.folder_version("churn", run, "v1", CHURN_FILES["1"], description="first", tags={"validated": "yes"})
        rest.folder_version("churn", run, "v2", CHURN_FILES["2"])
        rest.folder_version("churn", run, "v3", CHURN_FILES["3"], description="")
        rest.stage("churn", "2", "Staging")
        rest.stage("churn", "3", "Production")
        rest.alias("churn", "champion", "2")
        rest.alias("churn", "challenger", "3")
        rest.alias("churn", "Champ", "1")  # MLflow takes capitals; our alias rule does not

        other = rest.run(experiment, "fraud-run")
        rest.model("fraud")
        rest.folder_version("fraud", other, "model", FRAUD_FILES)

        # Artifacts this importer cannot read: an S3 URI, and a local path of a run stored on disk.
        rest.model("s3-model")
        rest.version("s3-model", source="s3://bucket/models/s3-model/1")
        local = rest.experiment("local-files", artifact_location=f"file://{directory}/local")
        local_run = rest.run(local, "local")
        rest.version("s3-model", source=f"{local_run['artifact_uri']}/model", run_id=local_run["run_id"])
        rest.alias("s3-model", "prod", "1")
        source = Source(server.url)
        source.run_id = run["run_id"]
        source.experiment_id = experiment
        yield source


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


def run_import(*args: str, url: str) -> str:
    out = io.StringIO()
    call_command("import_mlflow", "--tracking-uri", url, "--no-progress", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def counts_line(output: str, kind: str) -> tuple[int, int, int]:
    for line in output.splitlines():
        parts = line.split()
        if parts and parts[0] == kind and len(parts) == 4:
            return int(parts[1]), int(parts[2]), int(parts[3])
    raise AssertionError(f"no {kind} line in:\n{output}")


def stored_sha256(version: ModelVersion, path: str) -> str:
    _, stream = services.version_file_open(version, path)
    digest = hashlib.sha256()
    try:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    finally:
        stream.close()
    return digest.hexdigest()


def table_sizes() -> tuple[int, ...]:
    return (
        MLModel.objects.count(),
        ModelVersion.objects.count(),
        VersionFile.objects.count(),
        Experiment.objects.count(),
        Run.objects.count(),
    )


def assert_no_orphaned_files(owner) -> None:
    # Under the owner's prefix: on S3, the bucket holds other tests' files too.
    audit = services.storage_audit(min_age=timedelta(0), prefix=f"users/{owner.pk}")
    assert audit.orphans == [] and audit.missing == []


@pytest.mark.django_db(transaction=True)
def test_the_import_copies_the_registry_object_by_object_and_a_second_run_copies_nothing(mlflow_source, superuser):
    output = run_import("--with-runs", url=mlflow_source.url)
    host = mlflow_source.host

    assert counts_line(output, "models") == (3, 0, 0)
    assert counts_line(output, "versions") == (4, 0, 2)
    assert counts_line(output, "aliases") == (2, 0, 2)
    assert counts_line(output, "lifecycle") == (1, 0, 0)
    assert counts_line(output, "experiments")[0] == 3  # churn-training, local-files and MLflow's Default
    assert counts_line(output, "runs") == (3, 0, 0)
    assert "skipped version s3-model/1: its artifacts are at 's3://bucket/models/s3-model/1' (s3)" in output
    assert "skipped version s3-model/2: its artifacts are at 'file://" in output
    assert "skipped alias s3-model@prod: its version 1 was not imported" in output
    assert "skipped alias churn@Champ: alias:" in output

    churn = MLModel.objects.get(name="churn")
    assert churn.owner == superuser and churn.description == "Predicts churn"
    assert churn.tags == {"team": "growth", "domain": "retail", SOURCE_TAG: f"{host}/churn"}
    # MLflow's versions, in order, with MLflow's numbers (a model created this way starts without one).
    versions = {v.version_number: v for v in churn.versions.all()}
    assert sorted(versions) == [1, 2, 3]
    for mlflow_number, files in CHURN_FILES.items():
        version = versions[int(mlflow_number)]
        assert version.tags[SOURCE_TAG] == f"{host}/churn/{mlflow_number}"
        assert version.tags["mlflow.import.run_id"] == mlflow_source.run_id
        rows = {row.path: row for row in version.files.all()}
        assert sorted(rows) == sorted(files)
        for path, data in files.items():
            assert rows[path].size == len(data)
            assert rows[path].sha256 == hashlib.sha256(data).hexdigest() == stored_sha256(version, path)
    assert [versions[n].note for n in (1, 2, 3)] == ["first", "MLflow version 2", "MLflow version 3"]
    assert versions[1].tags["validated"] == "yes" and STAGE_TAG not in versions[1].tags
    assert versions[2].tags[STAGE_TAG] == "Staging" and versions[3].tags[STAGE_TAG] == "Production"
    assert churn.aliases == {"champion": 2, "challenger": 3}
    # MLflow's newest version is in Production: the model got there through staging, audited.
    assert churn.lifecycle == Stage.PRODUCTION
    moves = churn.events.order_by("created_at", "id").values_list("to_stage", flat=True)
    assert list(moves) == ["staging", "production"]

    fraud = MLModel.objects.get(name="fraud")
    assert fraud.latest_version == 1 and fraud.lifecycle == Stage.DEVELOPMENT
    fraud_v1 = fraud.versions.get(version_number=1)
    assert {row.path: row.sha256 for row in fraud_v1.files.all()} == {
        path: hashlib.sha256(data).hexdigest() for path, data in FRAUD_FILES.items()
    }
    assert MLModel.objects.get(name="s3-model").latest_version == 0

    experiment = Experiment.objects.get(name="churn-training", owner=superuser)
    assert experiment.description == "Churn experiments"
    assert "team=growth" in experiment.tags
    assert versions[1].experiment == experiment  # the version's run was imported into it
    run = Run.objects.get(experiment=experiment, name="baseline")
    assert versions[1].run == run  # and the version links the run
    assert run.status == "FINISHED" and (run.start_time, run.end_time) == (1_700_000_000_000, 1_700_000_060_000)
    assert dict(run.params.values_list("key", "value")) == {"lr": "0.1", "depth": "5"}
    tags = dict(run.tags.values_list("key", "value"))
    assert tags["owner"] == "ana" and tags[SOURCE_TAG] == f"{host}/runs/{mlflow_source.run_id}"
    history = run.metric_history.filter(key="loss").order_by("step").values_list("step", "value", "timestamp")
    assert list(history) == [(0, 0.9, 1_700_000_000_100), (1, 0.5, 1_700_000_000_200), (2, 0.3, 1_700_000_000_300)]
    assert run.latest_metrics.get(key="accuracy").value == 0.8
    assert_no_orphaned_files(superuser)

    before = table_sizes()
    again = run_import("--with-runs", url=mlflow_source.url)
    assert table_sizes() == before
    assert "Nothing new to copy" in again
    assert counts_line(again, "models") == (0, 3, 0)
    assert counts_line(again, "versions") == (0, 4, 2)
    assert counts_line(again, "tags") == (0, 3, 0)
    assert counts_line(again, "aliases") == (0, 2, 2)
    assert counts_line(again, "runs") == (0, 3, 0)


@pytest.mark.django_db(transaction=True)
def test_a_rerun_finishes_an_import_that_stopped_without_duplicates(mlflow_source, superuser):
    first = run_import("--limit", "1", url=mlflow_source.url)
    assert counts_line(first, "models") == (1, 0, 0)
    assert list(MLModel.objects.values_list("name", flat=True)) == ["churn"]
    churn = MLModel.objects.get(name="churn")
    # As if it stopped right after storing churn's last version, before tagging it with its origin...
    services.tag_delete(model=churn, actor=superuser, key=SOURCE_TAG, version_number=3)
    # ...and as if the next one stopped right after creating the model "fraud" (with its origin tag).
    fraud = services.model_create(owner=superuser, name="fraud", initial_version=False)
    services.tag_set(model=fraud, actor=superuser, key=SOURCE_TAG, value=f"{mlflow_source.host}/fraud")

    second = run_import(url=mlflow_source.url)
    assert counts_line(second, "models") == (1, 2, 0)
    assert counts_line(second, "versions") == (1, 3, 2)  # churn's 3 (one found by its files), fraud's 1
    churn.refresh_from_db()
    assert churn.latest_version == 3
    assert churn.versions.get(version_number=3).tags[SOURCE_TAG] == f"{mlflow_source.host}/churn/3"
    assert MLModel.objects.get(name="fraud").latest_version == 1
    assert sorted(MLModel.objects.values_list("name", flat=True)) == ["churn", "fraud", "s3-model"]

    third = run_import(url=mlflow_source.url)
    assert "Nothing new to copy" in third


@pytest.mark.django_db(transaction=True)
def test_a_storage_failure_midway_writes_no_row_and_leaves_no_file(mlflow_source, superuser, monkeypatch):
    store = services.artifact_store
    calls = []

    def failing_store(*, key, source):
        calls.append(key)
        if len(calls) == 5:  # churn's second version, its second file
            raise StorageUnavailable("Artifact storage is unavailable (store the file failed); nothing was changed.")
        return store(key=key, source=source)

    monkeypatch.setattr(services, "artifact_store", failing_store)
    with pytest.raises(CommandError, match="The import stopped: Artifact storage is unavailable"):
        run_import(url=mlflow_source.url)
    churn = MLModel.objects.get(name="churn")
    assert churn.latest_version == 1 and churn.versions.count() == 1  # MLflow's version 1, whole
    assert VersionFile.objects.filter(version__model=churn).count() == 3
    assert_no_orphaned_files(superuser)

    monkeypatch.setattr(services, "artifact_store", store)
    output = run_import(url=mlflow_source.url)
    assert counts_line(output, "versions") == (3, 1, 2)
    assert MLModel.objects.get(name="churn").latest_version == 3
    assert_no_orphaned_files(superuser)


@pytest.mark.django_db(transaction=True)
def test_a_model_whose_name_is_taken_here_is_skipped(mlflow_source, superuser):
    theirs = MLModelFactory(owner=UserFactory(username="someone"), name="Fraud")
    output = run_import(url=mlflow_source.url)
    assert f"skipped model fraud: the name is taken here by someone's model #{theirs.pk}" in output
    theirs.refresh_from_db()
    assert theirs.latest_version == 1 and theirs.tags == {}


@pytest.mark.django_db(transaction=True)
def test_the_importer_reports_its_progress(mlflow_source, superuser):
    class Recorder:
        def __init__(self):
            self.events = []

        def start(self, stage, total):
            self.events.append(("start", stage, total))

        def step(self, label):
            self.events.append(("step", label))

        def close(self):
            self.events.append(("close",))

    recorder = Recorder()
    summary = Importer(MlflowClient(mlflow_source.url), owner=superuser, progress=recorder).run()
    assert recorder.events == [
        ("start", "models", 3),
        ("step", "churn"),
        ("step", "fraud"),
        ("step", "s3-model"),
        ("close",),
    ]
    assert summary.created["versions"] == 4

    bar = io.StringIO()
    progress = TqdmProgress(bar, disable=False)
    progress.start("models", 2)
    progress.step("churn")
    progress.close()
    assert "models" in bar.getvalue() and "1/2" in bar.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_version_over_the_upload_limit_is_skipped_before_it_is_downloaded(mlflow_source, superuser, settings):
    settings.MAX_UPLOAD_BYTES = 1024 * 1024
    output = run_import(url=mlflow_source.url)
    assert f"skipped version churn/3: weights.bin is larger than MAX_UPLOAD_BYTES ({1024 * 1024} bytes)" in output
    assert "skipped alias churn@challenger: its version 3 was not imported" in output
    churn = MLModel.objects.get(name="churn")
    # Its newest version here is MLflow's 2, not the newest in MLflow: the model's stage stays.
    assert churn.latest_version == 2 and churn.aliases == {"champion": 2} and churn.lifecycle == Stage.DEVELOPMENT
    assert_no_orphaned_files(superuser)


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unreachable_server_is_a_command_error(superuser):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match=f"Cannot reach the MLflow server at {url}"):
        run_import(url=url)
    assert MLModel.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["ftp://mlflow:21", "databricks", "mlflow-artifacts:/1"])
def test_a_tracking_uri_that_is_not_http_is_a_command_error(superuser, url):
    with pytest.raises(CommandError, match="must be an http"):
        run_import(url=url)


@pytest.mark.django_db
def test_the_owner_must_exist_or_be_the_only_superuser():
    url = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match=r"No superuser here: name the owner .* with --owner"):
        run_import(url=url)
    UserFactory(username="root", is_superuser=True)
    UserFactory(username="admin", is_superuser=True)
    with pytest.raises(CommandError, match="Several superusers here"):
        run_import(url=url)
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        run_import("--owner", "nobody", url=url)


class AuthProxy:
    """A gateway in front of the MLflow server, as teams put one: it forwards requests carrying the
    right bearer token or basic credentials and answers 401 to the others."""

    TOKEN = "right-token"
    BASIC = "Basic " + base64.b64encode(b"ana:secret").decode()

    def __init__(self, upstream: str):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self):
                if self.headers.get("Authorization") not in (f"Bearer {proxy.TOKEN}", proxy.BASIC):
                    body = json.dumps({"error_code": "UNAUTHENTICATED", "message": "Unauthorized"}).encode()
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                request = urllib.request.Request(upstream + self.path, data=data, method=self.command)  # noqa: S310
                if self.headers.get("Content-Type"):
                    request.add_header("Content-Type", self.headers["Content-Type"])
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                        status, body, kind = response.status, response.read(), response.headers.get("Content-Type")
                except urllib.error.HTTPError as error:
                    status, body, kind = error.code, error.read(), error.headers.get("Content-Type")
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _forward

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_wrong_token_is_a_command_error_and_the_right_credentials_import(mlflow_source, superuser):
    with AuthProxy(mlflow_source.url) as proxy:
        with pytest.raises(CommandError, match=r"answered 401 Unauthorized .*check --token"):
            run_import("--token", "wrong", url=proxy.url)
        with pytest.raises(CommandError, match="answered 401"):
            run_import("--username", "ana", "--password", "wrong", url=proxy.url)
        assert MLModel.objects.count() == 0

        output = run_import("--token", AuthProxy.TOKEN, url=proxy.url)
        assert counts_line(output, "versions") == (4, 0, 2)
        again = run_import("--username", "ana", "--password", "secret", url=proxy.url)
        assert "Nothing new to copy" in again


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("mlflow-artifacts:/1/models/m-0123abcd/artifacts", "1/models/m-0123abcd/artifacts"),
        ("mlflow-artifacts:/1/5f0e/artifacts/model", "1/5f0e/artifacts/model"),
        ("mlflow-artifacts://mlflow.internal:5000/2/abc/artifacts/model/", "2/abc/artifacts/model"),
        ("s3://bucket/model", None),
        ("file:///tmp/mlruns/1/abc/artifacts/model", None),
        ("/srv/models/model", None),
        ("runs:/abc/model", None),
    ],
)
def test_download_uris_map_to_artifact_proxy_paths(uri, path):
    assert proxy_path(uri) == path


def test_a_file_is_downloaded_in_chunks_into_its_temporary_file(mlflow_source):
    class Sink(io.BytesIO):
        writes: list[int] = []

        def write(self, data):
            self.writes.append(len(data))
            return super().write(data)

    sink = Sink()
    client = MlflowClient(mlflow_source.url)
    path = f"{mlflow_source.experiment_id}/{mlflow_source.run_id}/artifacts/v3/weights.bin"
    size, sha256 = client.download(path, sink, limit=len(BIG))
    assert (size, sha256) == (len(BIG), hashlib.sha256(BIG).hexdigest()) and sink.getvalue() == BIG
    assert len(sink.writes) >= 4 and max(sink.writes) <= importer_module.CHUNK_BYTES
