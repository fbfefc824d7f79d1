"""The benchmark of ../shared/BENCHMARKS.md at one scale: ours, and MLflow's registry side by side.

    python -m bench.run --scale 10000 [--workers 2] [--seconds 10] [--mlflow] [--artifact-mib 1024]

Needs DATABASE_URL (PostgreSQL), REDIS_URL and AWS_* (`make bench` starts all three with
bench/with-services). It creates the database ``registry_bench_<scale>`` next to DATABASE_URL's,
seeds it in bulk (bench/seed.py), serves the app with gunicorn as the Docker image does (the given
worker count), and drives each workload with wrk on loopback (concurrency 8, two threads) twice:
with kept-alive connections and with ``Connection: close``. Per workload it prints requests/s, p50,
p99, errors, the SQL queries one such request makes, and the server's peak RSS. With ``--mlflow``
(or MLFLOW_URL naming a server already seeded with the same dataset) it drives MLflow's equivalent
REST calls in the same run, on the same PostgreSQL and worker count, and prints our/MLflow ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench import wrk
from bench.server import Gunicorn, s3_client, server_environment
from bench.wrk import Workload, WrkResult

MIB = 1024 * 1024


def ours(first_id: int, last_id: int) -> list[Workload]:
    ids = (first_id, last_id)
    return [
        Workload("list", "GET", "/api/v1/models/?page_size=100"),
        Workload("search_name", "GET", "/api/v1/models/?search=model-12&page_size=100"),
        Workload("filter", "GET", "/api/v1/models/?framework=sklearn&page_size=100"),
        Workload("search_both", "GET", "/api/v1/models/?search=model-12&framework=sklearn&page_size=100"),
        Workload("get_model", "GET", "/api/v1/models/{id}/", ids),
        Workload("get_version", "GET", "/api/v1/models/{id}/versions/{version}/", ids),
        Workload(
            "create_version",
            "POST",
            "/api/v1/models/{id}/versions/",
            ids,
            body='{"accuracy": 0.9, "note": "bench {n}"}',
        ),
    ]


# The figures the issue sets for each workload: (req/s ratio to MLflow, p99 ms at 10k models).
TARGET_RATIO = {
    "list": 5,
    "search_name": 5,
    "filter": 5,
    "search_both": 5,
    "get_model": 3,
    "get_version": 3,
    "create_version": 3,
}


@dataclass
class Row:
    workload: str
    mode: str
    result: WrkResult
    queries: int | None = None
    peak_rss: int = 0


def database_url_for(base_url: str, name: str) -> str:
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(base_url: str, name: str) -> None:
    import psycopg

    parts = urlsplit(base_url)
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def queries_per_request(workload: Workload, token: str, model_id: int) -> int:
    """The SQL queries one request of ``workload`` makes, counted in-process on the same database."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    path = workload.path.replace("{id}", str(model_id)).replace("{version}", "2")
    body = (workload.body or "").replace("{n}", "0")
    call = getattr(client, workload.method.lower())
    call(path, data=body, content_type="application/json")  # warm: first-request caches, connection
    with CaptureQueriesContext(connection) as captured:
        response = call(path, data=body, content_type="application/json")
    assert response.status_code < 300, (workload.name, response.status_code, response.content[:300])
    return len(captured)


def drive(
    url: str, workloads: list[Workload], *, seconds: int, modes: list[str], connections: int = 8, server=None
) -> list[Row]:
    rows = []
    for workload in workloads:
        for mode in modes:
            if server is not None:
                server.reset_peak()
            result = wrk.run(
                url,
                workload,
                seconds=seconds,
                connections=connections,
                threads=min(2, connections),
                close_connections=(mode == "close"),
            )
            rows.append(Row(workload.name, mode, result, peak_rss=server.peak_rss if server is not None else 0))
            print(
                f"  {workload.name:<15} {mode:<10} {result.requests_per_second:>9.1f} req/s "
                f"p50 {result.p50_ms:>7.1f} ms p99 {result.p99_ms:>7.1f} ms errors {result.errors}",
                flush=True,
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=10_000, help="models to seed (3 versions each)")
    parser.add_argument("--workers", type=int, default=2, help="server workers, the same for both (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (1: sync workers)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per workload and mode")
    parser.add_argument("--connections", type=int, default=8, help="wrk's concurrency (default 8)")
    parser.add_argument("--modes", default="keepalive,close", help="client connection modes to run")
    parser.add_argument("--mlflow", action="store_true", help="install, start and seed MLflow's server too")
    parser.add_argument("--artifact-mib", type=int, default=0, help="also upload/download a file this big")
    parser.add_argument("--only", default="", help="comma-separated workloads to run (default: all)")
    parser.add_argument(
        "--auth",
        choices=("jwt", "apikey"),
        default="jwt",
        help="credential our workloads send as the bearer token: a JWT access token (default) or a write API "
        "key of the same superuser (e.g. --only get_model --auth apikey)",
    )
    args = parser.parse_args(argv)
    modes = args.modes.split(",")

    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url.startswith("postgres"):
        print("bench.run needs DATABASE_URL=postgres://… (make bench starts PostgreSQL for it)", file=sys.stderr)
        return 2
    database = f"registry_bench_{args.scale}"
    create_database(base_url, database)
    env = server_environment(DATABASE_URL=database_url_for(base_url, database), ACCESS_TOKEN_MINUTES="600")  # noqa: S106 -- minutes
    # This process counts queries in-process on the same database, with the server's settings.
    os.environ.update(env, ALLOWED_HOSTS=env["ALLOWED_HOSTS"] + ",testserver")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench import seed

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)  # as the image does: whitenoise serves these
    if seed.seeded_count() != args.scale:
        print(f"seeding {args.scale} models …", flush=True)
        print(f"seeded in {seed.seed(args.scale, password=os.urandom(24).hex()):.1f} s", flush=True)
    token, first_id, last_id = bench_identity(args.auth)
    facade_run_id = facade_source()
    workloads = [w for w in ours(first_id, last_id) if not args.only or w.name in args.only.split(",")]
    query_counts = {w.name: queries_per_request(w, token, first_id) for w in workloads}
    connection.close()
    for workload in workloads:
        workload.headers["Authorization"] = f"Bearer {token}"

    log_dir = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    print(f"\n== ours: gunicorn, {args.workers} workers, {args.scale} models; logs in {log_dir}", flush=True)
    with Gunicorn(workers=args.workers, threads=args.threads, env=env, log_dir=log_dir) as server:
        idle_rss = server.rss()
        rows = drive(
            server.url, workloads, seconds=args.seconds, modes=modes, connections=args.connections, server=server
        )
        for row in rows:
            row.queries = query_counts[row.workload]
        # The same requests MLflow gets (bench/mlflow.py), sent to our MLflow-compatible API.
        from bench.mlflow import mlflow_workloads

        facade_workloads = [
            w
            for w in mlflow_workloads(args.scale, version_source=f"runs:/{facade_run_id}/model")
            if w.name in FACADE_WORKLOADS and (not args.only or w.name in args.only.split(","))
        ]
        for workload in facade_workloads:
            workload.headers["Authorization"] = f"Bearer {token}"
        print("\n== ours through the MLflow API (MLflow's own requests)", flush=True)
        facade_rows = drive(
            server.url, facade_workloads, seconds=args.seconds, modes=modes, connections=args.connections, server=server
        )
        artifact = artifact_round_trip(server, token, first_id, args.artifact_mib) if args.artifact_mib else None

    peer_rows, peer_idle = [], None
    with mlflow_server(args, base_url, log_dir) as peer:
        if peer is not None:
            peer_url, peer_idle = peer
            print(f"\n== MLflow at {peer_url}", flush=True)
            from bench.mlflow import mlflow_workloads

            peer_rows = drive(
                peer_url, mlflow_workloads(args.scale), seconds=args.seconds, modes=modes, connections=args.connections
            )
    report(args, rows, idle_rss, peer_rows, peer_idle, artifact)
    report_facade(facade_rows, peer_rows)
    return 0


# MLflow's requests, sent to our MLflow API too (create_version's source is a run's folder there).
FACADE_WORKLOADS = ("list", "search_name", "filter", "search_both", "get_model", "get_version", "create_version")
# What a version created through our MLflow API copies: a model folder of one small MLmodel file.
FACADE_MODEL_FILE = b"flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"


def facade_source() -> str:
    """The id of the bench superuser's run whose artifact folder ``model/`` our MLflow API's
    create_version registers (each request copies it inside the storage, as log_model's does)."""
    import io

    from accounts.models import User
    from experiments import artifacts, runs, services
    from experiments.models import Experiment

    user = User.objects.get(username="bench-admin")
    experiment = Experiment.objects.filter(owner=user, name="bench-facade").first() or services.experiment_create(
        owner=user, actor=user, name="bench-facade"
    )
    run = runs.run_create(experiment=experiment, actor=user, name="bench-facade")
    artifacts.file_store(
        owner=run, actor=user, path="model/MLmodel", body=io.BytesIO(FACADE_MODEL_FILE), length=len(FACADE_MODEL_FILE)
    )
    return run.run_id


def report_facade(facade_rows: list[Row], peer_rows: list[Row]) -> None:
    """The same MLflow requests to both servers: ours (its MLflow API) and MLflow, per mode."""
    if not facade_rows:
        return
    peer = {(row.workload, row.mode): row for row in peer_rows}
    print("\n### The same MLflow REST requests to our MLflow API and to MLflow")
    header = "| workload | mode | ours req/s | ours p50 | ours p99 | ours errors |"
    if peer_rows:
        header += " MLflow req/s | MLflow p99 | ours/MLflow |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in facade_rows:
        r = row.result
        line = (
            f"| {row.workload} | {row.mode} | {r.requests_per_second:.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
            f"{r.errors} |"
        )
        other = peer.get((row.workload, row.mode))
        if other is not None:
            o = other.result
            ratio = _ratio(r.requests_per_second, o.requests_per_second)
            line += f" {o.requests_per_second:.1f} | {o.p99_ms:.1f} | {ratio} |"
        print(line)


def bench_identity(auth: str = "jwt") -> tuple[str, int, int]:
    """A superuser's access token, or with ``auth="apikey"`` a new write API key of theirs (made by the
    service, like the page's and the API's), which may write to every seeded model; and the seeded ids'
    range. Either is sent as ``Authorization: Bearer …``."""
    from django.db.models import Max, Min
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import User
    from mlmodels.models import MLModel

    user, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"email": "bench-admin@bench.example", "is_superuser": True, "is_staff": True}
    )
    bounds = MLModel.objects.aggregate(first=Min("pk"), last=Max("pk"))
    if auth == "apikey":
        from accounts import services

        _, key = services.api_key_create(actor=user, user=user, name="bench", scope="write")
        return key, bounds["first"], bounds["last"]
    return str(RefreshToken.for_user(user).access_token), bounds["first"], bounds["last"]


@contextlib.contextmanager
def mlflow_server(args, base_url: str, log_dir: Path):
    """(url, idle RSS or None) of the peer to compare with, or None when there is none."""
    given = os.environ.get("MLFLOW_URL")
    if given:
        yield given.rstrip("/"), None
        return
    if not args.mlflow:
        yield None
        return
    from bench.mlflow import MlflowServer, ensure_mlflow, seed_mlflow, verify_seed

    ensure_mlflow()
    database = f"mlflow_bench_{args.scale}"
    create_database(base_url, database)
    url = database_url_for(base_url, database)
    with MlflowServer(url, workers=args.workers, artifacts_dir=log_dir / "mlflow-artifacts", log_dir=log_dir) as peer:
        seed_mlflow(url, args.scale)
        verify_seed(peer.url, args.scale)
        # Its web-serving processes, as BENCHMARKS.md counts them (not its job runner).
        yield peer.url, peer.web_rss()


def artifact_round_trip(server: Gunicorn, token: str, model_id: int, mib: int) -> dict:
    """Upload and download a ``mib`` MiB file through the API; compare with boto3 straight to S3."""
    import hashlib

    import requests

    size = mib * MIB
    path = Path(tempfile.mkdtemp(prefix="registry-artifact-")) / "weights.bin"
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for _ in range(mib):
            out.write(block)
    figures = {"mib": mib}
    headers = {"Authorization": f"Bearer {token}"}

    server.reset_peak()
    before = server.rss()
    started = time.monotonic()
    with path.open("rb") as file:
        body = MultipartFile(file, size=size, model_id=model_id)
        response = requests.post(
            f"{server.url}/api/v1/files/upload",
            data=body,
            headers={**headers, "Content-Type": body.content_type, "Content-Length": str(len(body))},
            timeout=3600,
        )
    figures["upload_seconds"] = time.monotonic() - started
    response.raise_for_status()
    stored = response.json()
    figures["upload_rss_growth"] = server.peak_rss - before

    server.reset_peak()
    before = server.rss()
    started = time.monotonic()
    digest = hashlib.sha256()
    with requests.get(
        f"{server.url}/api/v1/files/download/{stored['path']}", headers=headers, stream=True, timeout=3600
    ) as download:
        download.raise_for_status()
        for chunk in download.iter_content(MIB):
            digest.update(chunk)
    figures["download_seconds"] = time.monotonic() - started
    figures["download_rss_growth"] = server.peak_rss - before
    figures["intact"] = digest.hexdigest() == stored["sha256"]

    s3 = s3_client()
    started = time.monotonic()
    s3.upload_file(str(path), os.environ["AWS_STORAGE_BUCKET_NAME"], "bench/direct-upload.bin")
    figures["boto3_seconds"] = time.monotonic() - started
    s3.delete_object(Bucket=os.environ["AWS_STORAGE_BUCKET_NAME"], Key="bench/direct-upload.bin")
    path.unlink()
    return figures


class MultipartFile:
    """A multipart/form-data body (model_id, then the file) read from disk as it is sent, never held
    in memory, with its length known so the request carries a Content-Length."""

    boundary = "registry-bench-boundary"

    def __init__(self, file, *, size: int, model_id: int):
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        self.head = (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="model_id"\r\n\r\n{model_id}\r\n'
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="weights.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.file, self.size = file, size

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self):
        yield self.head
        while chunk := self.file.read(MIB):
            yield chunk
        yield self.tail


def _ratio(ours_value: float, theirs_value: float) -> str:
    return f"{ours_value / theirs_value:.1f}x" if theirs_value else "-"


def report(args, rows: list[Row], idle_rss: int, peer_rows: list[Row], peer_idle: int | None, artifact) -> None:
    peer = {(row.workload, row.mode): row for row in peer_rows}
    peer_best = {}
    for row in peer_rows:
        peer_best[row.workload] = max(peer_best.get(row.workload, 0), row.result.requests_per_second)
    print(
        f"\n### {args.scale:,} models ({3 * args.scale:,} versions), {args.workers} workers each, "
        f"wrk -t{min(2, args.connections)} -c{args.connections} -d{args.seconds}s --latency, PostgreSQL 15"
    )
    header = "| workload | mode | req/s | p50 ms | p99 ms | errors | queries | peak RSS MiB |"
    if peer_rows:
        header += (
            " MLflow req/s | MLflow p50 | MLflow p99 | MLflow errors | ours/MLflow (same mode) | ours/MLflow best |"
        )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in rows:
        r = row.result
        line = (
            f"| {row.workload} | {row.mode} | {r.requests_per_second:.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
            f"{r.errors} | {row.queries} | {row.peak_rss / MIB:.0f} |"
        )
        other = peer.get((row.workload, row.mode))
        if other is not None:
            o = other.result
            line += (
                f" {o.requests_per_second:.1f} | {o.p50_ms:.1f} | {o.p99_ms:.1f} | {o.errors} | "
                f"{_ratio(r.requests_per_second, o.requests_per_second)} | "
                f"{_ratio(r.requests_per_second, peer_best[row.workload])} (target {TARGET_RATIO[row.workload]}x) |"
            )
        print(line)
    print(f"\nidle server RSS, all processes: ours {idle_rss / MIB:.0f} MiB", end="")
    print(f", MLflow {peer_idle / MIB:.0f} MiB" if peer_idle else "")
    if artifact:
        download_rate = artifact["mib"] / artifact["download_seconds"]
        upload_rate = artifact["mib"] / artifact["upload_seconds"]
        boto3_rate = artifact["mib"] / artifact["boto3_seconds"]
        print(
            f"artifact {artifact['mib']} MiB: upload {upload_rate:.0f} MiB/s (boto3 straight to S3: "
            f"{boto3_rate:.0f} MiB/s, ours {upload_rate / boto3_rate:.0%} of it), RSS growth "
            f"{artifact['upload_rss_growth'] / MIB:.0f} MiB; download {download_rate:.0f} "
            f"MiB/s, RSS growth {artifact['download_rss_growth'] / MIB:.0f} MiB; sha256 intact: {artifact['intact']}"
        )


if __name__ == "__main__":
    sys.exit(main())
