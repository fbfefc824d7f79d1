"""A bounded mixed load on the registry, then a consistency check of everything it wrote.

    python -m bench.load [--concurrency 32] [--duration 60] [--workers 4]

Serves the app with gunicorn on a loopback port (DEBUG off, the backing services the environment
names: DATABASE_URL, REDIS_URL, AWS_*; `make load` starts PostgreSQL, Redis and the S3 server for it),
then for --duration seconds --concurrency clients list, filter, search and read models, record
versions, move stages, upload and download small files, and try to change other users' models.
It stops by itself, stops the server, and checks in the database and the storage that:
  - no request failed or got an answer other than the one it expects (an illegal stage move must
    be refused with 400, a write to another user's model with 403; a 5xx is always an error);
  - every model's versions are numbered 1..n with no gap or duplicate, one per successful write;
  - every stored object is referenced by a row and every referenced object exists, with the size
    and sha256 the client sent;
  - every model's audit trail is a chain of allowed moves that ends at the model's stage, and only
    owners appear in trails and versions.
Exits 1 when any of these fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.server import Gunicorn, s3_client, server_environment

USERS = 4
MODELS_PER_USER = 8
STAGES = ("development", "staging", "production", "archived")
FRAMEWORKS = ("sklearn", "pytorch", "tensorflow", "xgboost")
# The mix, by weight: mostly reads, as a registry sees in practice, with every write path in it.
OPERATIONS = {
    "list": 14,
    "filter": 10,
    "search": 6,
    "get_model": 14,
    "versions": 8,
    "history": 5,
    "create_version": 14,
    "move_stage": 10,
    "upload": 8,
    "download": 6,
    "intrude": 5,
}
API = "/api/v1"


@dataclass
class Upload:
    model_id: int
    version: int
    path: str
    size: int
    sha256: str


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    writes_per_model: Counter = field(default_factory=Counter)
    uploads: list[Upload] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, seconds: float, status: int, error: str | None = None) -> None:
        with self.lock:
            self.latencies[operation].append(seconds)
            self.statuses[(operation, status)] += 1
            if error:
                self.errors.append(f"{operation}: {error}")


@dataclass
class Actor:
    user_id: int
    username: str
    token: str
    model_ids: list[int]


class Client:
    """One simulated pipeline: its own HTTP session, acting as one user."""

    def __init__(self, *, base_url: str, actor: Actor, everyone: list[Actor], results: Results, seed: int):
        self.base = base_url + API
        self.actor = actor
        self.others = [other for other in everyone if other is not actor]
        self.all_model_ids = [model_id for other in everyone for model_id in other.model_ids]
        self.results = results
        self.random = random.Random(seed)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {actor.token}"

    def run_until(self, deadline: float) -> None:
        names, weights = zip(*OPERATIONS.items(), strict=True)
        while time.monotonic() < deadline:
            operation = self.random.choices(names, weights)[0]
            getattr(self, operation)()

    def _call(self, operation: str, method: str, path: str, *, expect: tuple[int, ...], **kwargs):
        started = time.perf_counter()
        try:
            response = self.session.request(method, self.base + path, timeout=30, **kwargs)
        except requests.RequestException as error:
            self.results.record(operation, time.perf_counter() - started, 0, f"{method} {path}: {error!r}")
            return None
        elapsed = time.perf_counter() - started
        error = None
        if response.status_code not in expect:
            error = f"{method} {path} answered {response.status_code}: {response.text[:300]}"
        self.results.record(operation, elapsed, response.status_code, error)
        return None if error else response

    def _own_model(self) -> int:
        return self.random.choice(self.actor.model_ids)

    def list(self) -> None:
        self._call("list", "GET", "/models/?page_size=50", expect=(200,))

    def filter(self) -> None:
        framework, stage = self.random.choice(FRAMEWORKS), self.random.choice(STAGES)
        self._call("filter", "GET", f"/models/?framework={framework}&lifecycle={stage}&page_size=50", expect=(200,))

    def search(self) -> None:
        words = f"load-{self.random.randrange(10)}"
        self._call("search", "GET", f"/models/?search={words}&ordering=-updated_at", expect=(200,))

    def get_model(self) -> None:
        self._call("get_model", "GET", f"/models/{self.random.choice(self.all_model_ids)}/", expect=(200,))

    def versions(self) -> None:
        self._call("versions", "GET", f"/models/{self.random.choice(self.all_model_ids)}/versions/", expect=(200,))

    def history(self) -> None:
        self._call("history", "GET", f"/models/{self.random.choice(self.all_model_ids)}/history/", expect=(200,))

    def create_version(self) -> None:
        model_id = self._own_model()
        body = {"accuracy": round(self.random.random(), 4), "hyperparameters": {"seed": self.random.randrange(1000)}}
        if self._call("create_version", "POST", f"/models/{model_id}/versions/", expect=(201,), json=body):
            with self.results.lock:
                self.results.writes_per_model[model_id] += 1

    def move_stage(self) -> None:
        # Any target, legal or not: the server must refuse the illegal ones (400), including those
        # made illegal by another client's move an instant earlier.
        body = {"lifecycle": self.random.choice(STAGES), "comment": "load"}
        self._call("move_stage", "PATCH", f"/models/{self._own_model()}/lifecycle/", expect=(200, 400), json=body)

    def upload(self) -> None:
        model_id = self._own_model()
        content = self.random.randbytes(self.random.randrange(1, 64 * 1024))
        files = {"file": (f"weights-{self.random.randrange(100)}.bin", content, "application/octet-stream")}
        response = self._call(
            "upload", "POST", "/files/upload", expect=(201,), files=files, data={"model_id": model_id}
        )
        if response is None:
            return
        answer = response.json()
        sha256 = hashlib.sha256(content).hexdigest()
        with self.results.lock:
            self.results.writes_per_model[model_id] += 1
            if answer["sha256"] != sha256 or answer["size"] != len(content):
                self.results.errors.append(f"upload: the server recorded {answer} for {len(content)} bytes {sha256}")
            self.results.uploads.append(Upload(model_id, answer["version"], answer["path"], len(content), sha256))

    def download(self) -> None:
        with self.results.lock:
            uploads = list(self.results.uploads[-200:])
        if not uploads:
            return self.list()
        upload = self.random.choice(uploads)
        response = self._call("download", "GET", f"/files/download/{upload.path}", expect=(200,))
        if response is not None and hashlib.sha256(response.content).hexdigest() != upload.sha256:
            with self.results.lock:
                self.results.errors.append(f"download: {upload.path} came back with other bytes")

    def intrude(self) -> None:
        model_id = self.random.choice(self.random.choice(self.others).model_ids)
        if self.random.random() < 0.5:
            self._call("intrude", "DELETE", f"/models/{model_id}/", expect=(403,))
        else:
            body = {"lifecycle": "archived", "comment": "not mine"}
            self._call("intrude", "PATCH", f"/models/{model_id}/lifecycle/", expect=(403,), json=body)


def create_actors(base_url: str, run_id: str) -> list[Actor]:
    """Users made directly in the database, their tokens and models through the API."""
    from accounts.models import User

    actors = []
    for index in range(USERS):
        username = f"load-{run_id}-{index}"
        password = secrets.token_urlsafe(24)
        user = User.objects.create_user(username=username, email=f"{username}@example.com", password=password)
        session = requests.Session()
        login = session.post(f"{base_url}{API}/auth/login/", json={"username": username, "password": password})
        login.raise_for_status()
        session.headers["Authorization"] = f"Bearer {login.json()['access']}"
        model_ids = []
        for number in range(MODELS_PER_USER):
            body = {
                "name": f"load-{number}-{run_id}-{index}",
                "description": f"load test model {number}",
                "framework": FRAMEWORKS[number % len(FRAMEWORKS)],
                "accuracy": 0.5,
            }
            created = session.post(f"{base_url}{API}/models/", json=body)
            created.raise_for_status()
            model_ids.append(created.json()["id"])
        actors.append(Actor(user.pk, username, login.json()["access"], model_ids))
    return actors


def fresh_storage(run_id: str, log_dir: Path) -> dict[str, str]:
    """An empty bucket (or media folder) for this run, so the storage check sees only its objects."""
    if not os.environ.get("AWS_S3_ENDPOINT_URL"):
        return {"MEDIA_ROOT": str(log_dir / "media")}
    bucket = f"registry-load-{run_id}"
    s3_client().create_bucket(Bucket=bucket)
    return {"AWS_STORAGE_BUCKET_NAME": bucket}


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def check_consistency(actors: list[Actor], results: Results, versions_before: dict[int, int]) -> list[str]:
    """Everything the load wrote, checked in the database and the storage once the server is stopped."""
    from datetime import timedelta

    from mlmodels.models import ALLOWED_MOVES, MLModel, Stage
    from mlmodels.services import storage_audit
    from mlmodels.storage import artifact_open_stream

    problems: list[str] = []
    model_ids = [model_id for actor in actors for model_id in actor.model_ids]
    models = MLModel.objects.filter(pk__in=model_ids).prefetch_related("versions", "events")
    if len(models) != len(model_ids):
        problems.append(f"{len(model_ids) - len(models)} of the load's models are gone")
    for model in models:
        numbers = sorted(version.version_number for version in model.versions.all())
        if numbers != list(range(1, model.latest_version + 1)):
            problems.append(f"model {model.pk}: versions {numbers[:5]}… are not 1..{model.latest_version}")
        added = len(numbers) - versions_before[model.pk]
        if added != results.writes_per_model[model.pk]:
            problems.append(
                f"model {model.pk}: {added} versions added, {results.writes_per_model[model.pk]} writes answered 201"
            )
        stage = Stage.DEVELOPMENT
        for event in sorted(model.events.all(), key=lambda event: (event.created_at, event.pk)):
            if event.from_stage != stage or event.to_stage not in ALLOWED_MOVES[event.from_stage]:
                problems.append(f"model {model.pk}: trail has {event.from_stage}→{event.to_stage} after {stage}")
            if event.actor_id != model.owner_id:
                problems.append(f"model {model.pk}: event {event.pk} by user {event.actor_id}, not the owner")
            stage = event.to_stage
        if stage != model.lifecycle:
            problems.append(f"model {model.pk}: trail ends at {stage}, the model is in {model.lifecycle}")
        strangers = {version.created_by_id for version in model.versions.all()} - {model.owner_id}
        if strangers:
            problems.append(f"model {model.pk}: versions created by {strangers}, not the owner")
    for actor in actors:
        audit = storage_audit(min_age=timedelta(0), prefix=f"users/{actor.user_id}")
        problems += [f"orphaned object {key}" for key in audit.orphans]
        problems += [f"row points at missing object {key}" for key in audit.missing]
    for upload in results.uploads:
        digest, size = hashlib.sha256(), 0
        with artifact_open_stream(upload.path) as stream:
            while chunk := stream.read(1 << 16):
                digest.update(chunk)
                size += len(chunk)
        if (size, digest.hexdigest()) != (upload.size, upload.sha256):
            stored = f"{size} bytes {digest.hexdigest()}"
            problems.append(f"{upload.path}: stored {stored}, sent {upload.size} bytes {upload.sha256}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (default 1: sync workers)")
    args = parser.parse_args(argv)

    missing = [name for name in ("DATABASE_URL", "REDIS_URL", "AWS_S3_ENDPOINT_URL") if not os.environ.get(name)]
    if missing:
        print(f"note: {', '.join(missing)} not set: this run uses the embedded default(s) instead", file=sys.stderr)
    run_id = secrets.token_hex(3)
    log_dir = Path(tempfile.mkdtemp(prefix="registry-load-"))
    env = server_environment(**fresh_storage(run_id, log_dir))
    shared = ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT", "AWS_STORAGE_BUCKET_NAME")
    os.environ.update({key: env[key] for key in shared if key in env})
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    results = Results()
    with Gunicorn(workers=args.workers, threads=args.threads, env=env, log_dir=log_dir) as server:
        actors = create_actors(server.url, run_id)
        from mlmodels.models import ModelVersion

        before = Counter(
            ModelVersion.objects.filter(model__owner_id__in=[a.user_id for a in actors]).values_list(
                "model_id", flat=True
            )
        )
        connection.close()  # the checks reconnect after the load; no idle connection held meanwhile
        idle_rss = server.rss()
        server.reset_peak()
        clients = [
            Client(base_url=server.url, actor=actors[i % USERS], everyone=actors, results=results, seed=i)
            for i in range(args.concurrency)
        ]
        started = time.monotonic()
        deadline = started + args.duration
        threads = [threading.Thread(target=client.run_until, args=(deadline,)) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        peak_rss = server.peak_rss
    problems = check_consistency(actors, results, before)
    report(args, results, elapsed, idle_rss, peak_rss, problems, log_dir)
    return 1 if results.errors or problems else 0


def report(args, results: Results, elapsed: float, idle_rss: int, peak_rss: int, problems, log_dir) -> None:
    all_latencies = [value for values in results.latencies.values() for value in values]
    total = len(all_latencies)
    print(
        f"\nload: {args.concurrency} clients for {elapsed:.1f} s against gunicorn "
        f"({args.workers} workers x {args.threads} thread(s)); server log in {log_dir}"
    )
    print(f"{'operation':<15} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}  answers")
    for operation in OPERATIONS:
        values = results.latencies.get(operation, [])
        answers = ", ".join(
            f"{status}: {count}" for (name, status), count in sorted(results.statuses.items()) if name == operation
        )
        print(
            f"{operation:<15} {len(values):>9} {percentile(values, 0.5) * 1000:>8.1f} "
            f"{percentile(values, 0.99) * 1000:>8.1f}  {answers}"
        )
    print(
        f"{'all':<15} {total:>9} {percentile(all_latencies, 0.5) * 1000:>8.1f} "
        f"{percentile(all_latencies, 0.99) * 1000:>8.1f}  {total / elapsed:.1f} req/s, "
        f"mean {statistics.fmean(all_latencies) * 1000 if total else 0:.1f} ms"
    )
    print(f"server RSS (master + workers): {idle_rss / 2**20:.0f} MiB before the load, peak {peak_rss / 2**20:.0f} MiB")
    print(f"errors: {len(results.errors)}")
    for error in results.errors[:20]:
        print(f"  {error}")
    writes = sum(results.writes_per_model.values())
    print(
        f"consistency: {writes} versions written, {len(results.uploads)} uploads checked byte for byte: "
        + ("OK" if not problems else f"{len(problems)} problem(s)")
    )
    for problem in problems[:50]:
        print(f"  {problem}")


if __name__ == "__main__":
    sys.exit(main())
