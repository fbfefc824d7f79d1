"""The peer of `make bench`: MLflow's model registry server, run and loaded as BENCHMARKS.md describes.

    mlflow = ensure_mlflow()                       # its own virtualenv, bench/.mlflow-venv
    url = mlflow_database(os.environ["DATABASE_URL"])   # a fresh database beside ours
    with MlflowServer(url, workers=2, artifacts_dir=..., log_dir=...) as server:
        seed_mlflow(url, 10_000)                   # bulk SQL, after the server has made its schema
        verify_seed(server.url, 10_000)
        for workload in mlflow_workloads(10_000):
            bench.wrk.run(server.url, workload)

MLflow is never installed into the project's virtualenv: its pins (SQLAlchemy, FastAPI, uvicorn, ...)
are not ours, and the registry must not be able to import it by accident.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import psycopg

from bench.server import child_pids, free_port, process_tree_rss
from bench.wrk import Workload

ROOT = Path(__file__).resolve().parent.parent
MLFLOW_VERSION = "3.17.2"
REQUIREMENTS = ROOT / "bench/requirements-mlflow.txt"
API = "/api/2.0/mlflow"

FRAMEWORKS = ("sklearn", "pytorch", "xgboost")
TASKS = ("classification", "regression")
VERSIONS_PER_MODEL = 3
# MLflow 3 keys every registry row by workspace; with workspaces off (the default) it reads and
# writes only this one, so seeded rows must carry it to be seen.
WORKSPACE = "default"


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_mlflow(venv_dir: Path = ROOT / "bench/.mlflow-venv") -> Path:
    """The `mlflow` executable of a virtualenv holding MLflow ``MLFLOW_VERSION``, made (~1.5 min,
    ~860 MB) or repaired with bench/requirements-mlflow.txt when it is missing or holds another one."""
    python, mlflow = venv_dir / "bin/python", venv_dir / "bin/mlflow"
    if _installed_version(python) == MLFLOW_VERSION and mlflow.exists():
        return mlflow
    started = time.monotonic()
    print(f"installing MLflow {MLFLOW_VERSION} into {venv_dir} ...", file=sys.stderr, flush=True)
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], capture_output=True, text=True)
        if made.returncode != 0:
            raise RuntimeError(f"could not create the virtualenv {venv_dir}:\n{made.stderr[-4000:]}")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        raise RuntimeError(f"pip install -r {REQUIREMENTS} into {venv_dir} failed:\n{install.stderr[-4000:]}")
    found = _installed_version(python)
    if found != MLFLOW_VERSION or not mlflow.exists():
        raise RuntimeError(f"{venv_dir} holds MLflow {found}, not {MLFLOW_VERSION}: check {REQUIREMENTS}")
    print(f"MLflow {MLFLOW_VERSION} installed in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return mlflow


def sqlalchemy_url(database_url: str) -> str:
    """Our ``postgres://`` URL in the form MLflow's SQLAlchemy store needs."""
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+psycopg2"):
        raise ValueError(f"not a PostgreSQL URL: {parts.scheme}://...")
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2"))


def mlflow_database(database_url: str, name: str = "mlflow_bench", *, fresh: bool = True) -> str:
    """The URL of database ``name`` on the server ``database_url`` names, created (dropped first
    when ``fresh``): MLflow gets a database of its own on the same PostgreSQL as ours."""
    parts = urlsplit(database_url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as connection:
        if fresh:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class MlflowServer:
    """``mlflow server`` on a PostgreSQL database and a loopback port, as BENCHMARKS.md ran it.

    Its process tree, by default (MLflow 3.17.2, --workers 2; 13 processes, ~2.6 GB once seeded):
      mlflow server (the CLI, ~250 MB: it launches the rest and stays up to forward signals)
      ├─ python -m uvicorn (the supervisor) ─┬─ multiprocessing resource tracker (~12 MB)
      │                                      └─ N workers (~260 MB each)
      └─ python -m mlflow.server.jobs._job_runner ── 7 huey consumers (~230 MB each)
    The job runner is on by default (MLFLOW_SERVER_ENABLE_JOB_EXECUTION) and is left on, as a team
    that installs MLflow gets it; idle it takes no CPU. ``rss()`` counts the whole tree, everything
    the command costs; ``web_rss()`` only the uvicorn supervisor's tree, the "web-serving processes"
    BENCHMARKS.md gives 567 MiB for and the figure to set beside our gunicorn's master + workers.
    ``peak_rss`` and ``peak_web_rss`` are the highest of each, sampled every 100 ms since start or
    ``reset_peak()``.
    """

    def __init__(
        self,
        database_url: str,
        *,
        workers: int,
        artifacts_dir: Path,
        log_dir: Path,
        mlflow: Path | None = None,
        startup_timeout: float = 180.0,
    ):
        self.database_url = database_url
        self.workers = workers
        self.artifacts_dir = Path(artifacts_dir)
        self.log_dir = Path(log_dir)
        self.mlflow = mlflow
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.log_dir / f"mlflow-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None
        self.peak_rss = 0
        self.peak_web_rss = 0
        self._uvicorn_pid: int | None = None
        self._sampling = threading.Event()

    def command(self) -> list[str]:
        return [
            str(self.mlflow),
            "server",
            "--backend-store-uri",
            sqlalchemy_url(self.database_url),
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

    def __enter__(self) -> MlflowServer:
        if self.mlflow is None:
            self.mlflow = ensure_mlflow()
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")  # start-up is read from this log: no lines of an earlier run
        # Its own session and process group: the job runner's consumers outlive a SIGTERM to the
        # CLI by several seconds, and only a signal to the group reaches all of them.
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.log_dir,  # MLflow may leave files in its working directory: not in the repo
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        self.pid = self.process.pid
        try:
            self._wait_until_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self._sampling.set()
        threading.Thread(target=self._sample_rss, daemon=True).start()
        return self

    def _get(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def _wait_until_ready(self) -> None:
        """Until every worker has started and the registry answers. On a new database MLflow makes
        its ~60 tables first (a few seconds); each worker then imports MLflow (~15 s on 2 cores)."""
        deadline = time.monotonic() + self.startup_timeout
        search = f"{API}/registered-models/search?max_results=1"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}:\n{self._log_tail()}")
            started = self.log_path.read_text(errors="replace").count("Application startup complete")
            if started >= self.workers:
                try:
                    # Each new connection may land on either worker: a few reach them all, so no
                    # worker makes its database engine during the first measured requests.
                    if self._get("/health", timeout=5)[0] == 200 and all(
                        self._get(search, timeout=30)[0] == 200 for _ in range(4 * self.workers)
                    ):
                        self._uvicorn_pid = self._find_uvicorn()
                        self._wait_until_quiet(deadline)
                        return
                except OSError:
                    pass
            time.sleep(0.5)
        raise RuntimeError(f"mlflow server did not answer within {self.startup_timeout:.0f} s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join([f"--- last lines of {self.log_path} ---", *tail])

    def _wait_until_quiet(self, deadline: float) -> None:
        """Until the job runner's consumers, which start after the web workers, have finished
        importing MLflow: ~2 CPU-seconds each, which would otherwise load the first workload."""
        tick = os.sysconf("SC_CLK_TCK")
        before = self._group_cpu_ticks()
        while time.monotonic() < deadline:
            time.sleep(1)
            after = self._group_cpu_ticks()
            if after - before < 0.05 * tick:
                return
            before = after
        print(f"mlflow server still busy after start-up; see {self.log_path}", file=sys.stderr)

    def _group_cpu_ticks(self) -> int:
        total = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # After the command name: state, ppid, pgrp, ..., utime and stime are the 12th and 13th.
            if int(fields[2]) == self.pid:
                total += int(fields[11]) + int(fields[12])
        return total

    def _find_uvicorn(self) -> int | None:
        for child in child_pids(self.pid):
            if "-m uvicorn" in _command_line(child):
                return child
        return None

    def rss(self) -> int:
        """Bytes resident in the whole tree: CLI, uvicorn and its workers, job runner and consumers."""
        return process_tree_rss(self.pid)

    def web_rss(self) -> int:
        """Bytes resident in the uvicorn supervisor and its workers only."""
        if self._uvicorn_pid is None:
            self._uvicorn_pid = self._find_uvicorn()
        return process_tree_rss(self._uvicorn_pid) if self._uvicorn_pid else 0

    def _sample_rss(self) -> None:
        while self._sampling.is_set() and self.process.poll() is None:
            self.peak_rss = max(self.peak_rss, self.rss())
            self.peak_web_rss = max(self.peak_web_rss, self.web_rss())
            time.sleep(0.1)

    def reset_peak(self) -> None:
        self.peak_rss, self.peak_web_rss = self.rss(), self.web_rss()

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def __exit__(self, *exc_info) -> None:
        self._sampling.clear()
        if self.process is not None:
            deadline = time.monotonic() + 30
            if self._group_alive():
                os.killpg(self.pid, signal.SIGTERM)
            while self._group_alive() and time.monotonic() < deadline:
                self.process.poll()  # reaps the CLI, which would otherwise keep the group alive
                time.sleep(0.2)
            if self._group_alive():
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()


# The dataset as MLflow's REST API would have stored it (columns and defaults read off rows made by
# registered-models/create and model-versions/create): stage 'None', status 'READY', '' for an unset
# description, run id and run link, and storage_location equal to a plain URI source. ON CONFLICT DO
# NOTHING: a partly seeded database is completed, a seeded one left as it is.
SEED_SQL = (
    """INSERT INTO registered_models (workspace, name, creation_time, last_updated_time, description)
       SELECT %(workspace)s, 'model-' || i, %(base_ms)s + i * 10, %(base_ms)s + i * 10 + %(versions)s,
              'seed model ' || i
       FROM generate_series(0, %(last)s) AS i
       ON CONFLICT DO NOTHING""",
    """INSERT INTO registered_model_tags (workspace, name, key, value)
       SELECT %(workspace)s, 'model-' || i, 'framework', (%(frameworks)s::text[])[i %% %(n_frameworks)s + 1]
       FROM generate_series(0, %(last)s) AS i
       UNION ALL
       SELECT %(workspace)s, 'model-' || i, 'task', (%(tasks)s::text[])[i %% %(n_tasks)s + 1]
       FROM generate_series(0, %(last)s) AS i
       ON CONFLICT DO NOTHING""",
    """INSERT INTO model_versions (workspace, name, version, creation_time, last_updated_time, description,
                                  user_id, current_stage, source, storage_location, run_id, run_link,
                                  status, status_message)
       SELECT %(workspace)s, 'model-' || i, v, %(base_ms)s + i * 10 + v, %(base_ms)s + i * 10 + v, '',
              NULL, 'None', 's3://ml-models/model-' || i || '/' || v, 's3://ml-models/model-' || i || '/' || v,
              '', '', 'READY', NULL
       FROM generate_series(0, %(last)s) AS i CROSS JOIN generate_series(1, %(versions)s) AS v
       ON CONFLICT DO NOTHING""",
)


def seed_mlflow(database_url: str, count: int) -> None:
    """``count`` models of BENCHMARKS.md's dataset (model-0 … model-{count-1}, tags framework and
    task, 3 versions each) written straight into MLflow's tables: 10k models take about a second,
    where MLflow's REST API does ~65 creates/s (10 minutes). The server must have run once on the
    database first, since it makes the schema. Does nothing when all ``count`` models are there."""
    started = time.monotonic()
    with psycopg.connect(database_url) as connection:
        schema = connection.execute("SELECT to_regclass('registered_models')").fetchone()[0]
        if schema is None:
            raise RuntimeError("MLflow's tables are missing: start MlflowServer on this database before seeding it")
        present = connection.execute(
            "SELECT count(*) FROM generate_series(0, %s - 1) AS i"
            " JOIN registered_models AS m ON m.workspace = %s AND m.name = 'model-' || i",
            (count, WORKSPACE),
        ).fetchone()[0]
        if present == count:
            return
        params = {
            "workspace": WORKSPACE,
            "last": count - 1,
            "versions": VERSIONS_PER_MODEL,
            # Spread over the past, 10 ms apart, so creation order and name order differ as in life.
            "base_ms": int(time.time() * 1000) - count * 10,
            "frameworks": list(FRAMEWORKS),
            "n_frameworks": len(FRAMEWORKS),
            "tasks": list(TASKS),
            "n_tasks": len(TASKS),
        }
        for statement in SEED_SQL:
            connection.execute(statement, params)
    with psycopg.connect(database_url, autocommit=True) as connection:
        # Fresh statistics, as autovacuum would have them on a registry that grew over time; without
        # them the planner guesses at the tag join and MLflow would be measured on a bad plan.
        connection.execute("ANALYZE registered_models, registered_model_tags, model_versions")
    print(f"seeded {count} MLflow models in {time.monotonic() - started:.1f} s", file=sys.stderr)


def _api_json(base_url: str, path: str, **params: object) -> dict:
    with urllib.request.urlopen(f"{base_url}{API}/{path}?{urlencode(params, quote_via=quote)}", timeout=60) as r:
        return json.loads(r.read())


def verify_seed(base_url: str, count: int) -> None:
    """Raise unless MLflow's REST API sees the seeded dataset the way it would have made it."""
    i = min(42, count - 1)
    name = f"model-{i}"
    model = _api_json(base_url, "registered-models/get", name=name)["registered_model"]
    tags = {tag["key"]: tag["value"] for tag in model.get("tags", [])}
    expected_tags = {"framework": FRAMEWORKS[i % len(FRAMEWORKS)], "task": TASKS[i % len(TASKS)]}
    latest = [version["version"] for version in model.get("latest_versions", [])]
    if tags != expected_tags or latest != [str(VERSIONS_PER_MODEL)] or model.get("description") != f"seed model {i}":
        raise RuntimeError(f"registered-models/get?name={name} does not show the seed: {model}")
    version = _api_json(base_url, "model-versions/get", name=name, version=VERSIONS_PER_MODEL)["model_version"]
    if version.get("status") != "READY" or version.get("current_stage") != "None" or not version.get("source"):
        raise RuntimeError(f"model-versions/get?name={name}&version=3 does not show the seed: {version}")
    found = _api_json(base_url, "registered-models/search", max_results=100, filter="tags.framework = 'sklearn'")
    names = [m["name"] for m in found.get("registered_models", [])]
    if len(names) != min(100, (count + 2) // 3) or any(int(n.split("-")[1]) % 3 for n in names):
        raise RuntimeError(f"registered-models/search by tag found {len(names)} models: {names[:5]} ...")


def _search(filter_string: str | None = None) -> str:
    params: dict[str, object] = {"max_results": 100}
    if filter_string:
        params["filter"] = filter_string
    return f"{API}/registered-models/search?{urlencode(params, quote_via=quote)}"


def mlflow_workloads(count: int, *, version_source: str = "s3://ml-models/model-{id}/bench-{n}") -> list[Workload]:
    """BENCHMARKS.md's workloads as MLflow REST 2.0 requests, named as ours are. A version's source
    is ``version_source``: a plain URI for MLflow (it refuses a local path without a run, and
    resolves models:/ ones); our MLflow API takes only a folder of its own storage (a run's)."""
    ids = (0, count - 1)
    name_filter, tag_filter = "name LIKE 'model-12%'", "tags.framework = 'sklearn'"
    return [
        Workload("list", "GET", _search()),
        Workload("search_name", "GET", _search(name_filter)),
        Workload("filter", "GET", _search(tag_filter)),
        Workload("search_both", "GET", _search(f"{name_filter} AND {tag_filter}")),
        Workload("get_model", "GET", f"{API}/registered-models/get?name=model-{{id}}", ids=ids),
        Workload("get_version", "GET", f"{API}/model-versions/get?name=model-{{id}}&version={{version}}", ids=ids),
        Workload(
            "create_version",
            "POST",
            f"{API}/model-versions/create",
            ids=ids,
            body='{"name": "model-{id}", "source": "' + version_source + '"}',
        ),
    ]
