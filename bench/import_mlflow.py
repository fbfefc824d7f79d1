"""The MLflow importer's acceptance benchmark: a real MLflow server with 100 registered models x 3
versions with artifacts, imported into a fresh registry twice.

    python -m bench.import_mlflow [--models 100] [--versions 3] [--with-runs]

Starts ``mlflow server`` (MLflow 3.17.2 from bench/.mlflow-venv, ``ensure_mlflow``) on a SQLite
database with its artifact proxy on a temporary folder, fills it through its own REST API (each
version's artifact folder, MLmodel + model.pkl of a few KiB, uploaded through the proxy), then runs
``manage.py import_mlflow`` in this process into a fresh SQLite database and MEDIA_ROOT, twice. Prints
the time of each run and what each copied; the second must copy nothing (exit 1 otherwise).

``SqliteMlflowServer`` and ``MlflowRest`` are also what mlflow_api/tests/test_import_mlflow.py uses.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

from bench.mlflow import API, MlflowServer

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


class SqliteMlflowServer(MlflowServer):
    """``mlflow server`` on a SQLite file with one worker and no job runner: the smallest real
    MLflow tracking server with its artifact proxy (--serve-artifacts) on ``artifacts_dir``."""

    def __init__(self, directory: Path, **options):
        directory = Path(directory)
        options.setdefault("workers", 1)
        super().__init__(
            f"sqlite:///{directory / 'mlflow.db'}", artifacts_dir=directory / "artifacts", log_dir=directory, **options
        )

    def command(self) -> list[str]:
        return [
            "/usr/bin/env",
            # The job runner (7 huey consumers) serves nothing the registry API needs.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
            str(self.mlflow),
            "server",
            "--backend-store-uri",
            self.database_url,
            "--serve-artifacts",
            "--artifacts-destination",
            str(self.artifacts_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]


class MlflowRest:
    """MLflow's REST API as a script fills it (urllib only): what a team's pipelines left there."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def _open(self, request: urllib.request.Request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{request.method} {request.full_url}: {error.code} {error.read()[:500]!r}") from None

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            f"{self.url}{API}/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return json.loads(self._open(request) or b"{}")

    def get(self, path: str, **params) -> dict:
        request = urllib.request.Request(f"{self.url}{API}/{path}?{urlencode(params, quote_via=quote)}")
        return json.loads(self._open(request) or b"{}")

    def put_artifact(self, path: str, data: bytes) -> None:
        request = urllib.request.Request(f"{self.url}{ARTIFACTS}/{quote(path)}", data=data, method="PUT")
        self._open(request)

    def experiment(self, name: str, **fields) -> str:
        return self.post("experiments/create", {"name": name, **fields})["experiment_id"]

    def run(self, experiment_id: str, name: str, **fields) -> dict:
        return self.post("runs/create", {"experiment_id": experiment_id, "run_name": name, **fields})["run"]["info"]

    def model(self, name: str, *, description: str = "", tags: dict | None = None) -> None:
        tags = [{"key": key, "value": value} for key, value in (tags or {}).items()]
        self.post("registered-models/create", {"name": name, "description": description, "tags": tags})

    def version(self, name: str, *, source: str, run_id: str = "", description: str = "", tags=None) -> str:
        tags = [{"key": key, "value": value} for key, value in (tags or {}).items()]
        body = {"name": name, "source": source, "run_id": run_id, "description": description, "tags": tags}
        return self.post("model-versions/create", body)["model_version"]["version"]

    def folder_version(self, name: str, run: dict, folder: str, files: dict[str, bytes], **fields) -> str:
        """A version whose artifact is ``files`` uploaded under the run's ``artifacts/<folder>``
        through the proxy, as ``log_model`` leaves it (source ``mlflow-artifacts:/<exp>/<run>/artifacts/…``)."""
        root = f"{run['artifact_uri'].removeprefix('mlflow-artifacts:/')}/{folder}"
        for path, data in files.items():
            self.put_artifact(f"{root}/{path}", data)
        return self.version(name, source=f"mlflow-artifacts:/{root}", run_id=run["run_id"], **fields)

    def alias(self, name: str, alias: str, version: str) -> None:
        self.post("registered-models/alias", {"name": name, "alias": alias, "version": version})

    def stage(self, name: str, version: str, stage: str) -> None:
        body = {"name": name, "version": version, "stage": stage, "archive_existing_versions": False}
        self.post("model-versions/transition-stage", body)


def mlmodel_files(name: str, version: int, size: int = 4096) -> dict[str, bytes]:
    """An MLflow sklearn-flavoured model folder of a few KiB: MLmodel and a model.pkl (a plain pickle
    of numbers, which the artifact scan finds clean)."""
    mlmodel = (
        f"artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
        f"    pickled_model: model.pkl\n    python_version: 3.11.0\n  sklearn:\n    pickled_model: model.pkl\n"
        f"    serialization_format: cloudpickle\n    sklearn_version: 1.5.0\nmodel_uuid: {name}-{version}\n"
    ).encode()
    weights = [(version * 7919 + i) % 1000 / 1000 for i in range(size // 10)]
    buffer = io.BytesIO()
    pickle.dump({"name": name, "version": version, "weights": weights}, buffer, protocol=4)
    return {"MLmodel": mlmodel, "model.pkl": buffer.getvalue()}


def fill(rest: MlflowRest, *, models: int, versions: int, with_runs: bool) -> None:
    experiment = rest.experiment("bench-training")
    for i in range(models):
        name = f"bench-model-{i:03d}"
        rest.model(name, description=f"benchmark model {i}", tags={"team": f"team-{i % 5}", "framework": "sklearn"})
        for v in range(1, versions + 1):
            run = rest.run(experiment, f"{name}-run-{v}", start_time=1_700_000_000_000 + i * 1000 + v)
            if with_runs:
                metrics = [{"key": "loss", "value": 1 / (step + 1), "timestamp": 1, "step": step} for step in range(5)]
                rest.post("runs/log-batch", {"run_id": run["run_id"], "params": [{"key": "v", "value": str(v)}],
                                             "metrics": metrics})  # fmt: skip
            rest.folder_version(name, run, "model", mlmodel_files(name, v), description=f"v{v} of {name}")
        rest.alias(name, "champion", str(versions))


def _django(directory: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="registry.settings",
        DATABASE_URL=f"sqlite:///{directory / 'registry.sqlite3'}",
        MEDIA_ROOT=str(directory / "media"),
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-import-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
    )
    for name in [name for name in os.environ if name.startswith("AWS_") or name in ("REDIS_URL", "TASK_BROKER_URL")]:
        del os.environ[name]  # local files and in-process tasks: the embedded defaults
    import django

    django.setup()


def _import(url: str, *, with_runs: bool) -> tuple[float, str]:
    from django.core.management import call_command

    out = io.StringIO()
    started = time.monotonic()
    arguments = ["--tracking-uri", url, "--no-progress"] + (["--with-runs"] if with_runs else [])
    call_command("import_mlflow", *arguments, stdout=out, stderr=sys.stderr)
    return time.monotonic() - started, out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--with-runs", action="store_true", help="also import the runs (one per version)")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        directory = Path(tmp)
        _django(directory)
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from mlmodels.models import MLModel, ModelVersion, VersionFile

        call_command("migrate", verbosity=0)
        get_user_model().objects.create_superuser("importer", "importer@example.com", "bench-import-password")
        started = time.monotonic()
        with SqliteMlflowServer(directory / "mlflow") as server:
            print(f"mlflow server {server.url} started in {time.monotonic() - started:.1f} s", file=sys.stderr)
            started = time.monotonic()
            fill(MlflowRest(server.url), models=options.models, versions=options.versions, with_runs=options.with_runs)
            print(
                f"filled MLflow with {options.models} models x {options.versions} versions in "
                f"{time.monotonic() - started:.1f} s",
                file=sys.stderr,
            )
            first, first_out = _import(server.url, with_runs=options.with_runs)
            counts = (MLModel.objects.count(), ModelVersion.objects.count(), VersionFile.objects.count())
            second, second_out = _import(server.url, with_runs=options.with_runs)
            again = (MLModel.objects.count(), ModelVersion.objects.count(), VersionFile.objects.count())
        print(f"first import: {first:.1f} s\n{first_out}")
        print(f"second import: {second:.1f} s\n{second_out}")
        expected_versions = options.models * options.versions
        print(f"registry after the first: {counts[0]} models, {counts[1]} versions, {counts[2]} files")
        print(f"registry after the second: {again[0]} models, {again[1]} versions, {again[2]} files")
        ok = counts == again and counts[1] == expected_versions and "Nothing new to copy" in second_out
        print("OK: the second run copied nothing" if ok else "FAILED: see above")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
