"""The live updates under load, served as in production: event -> every open page, and none lost.

    python -m bench.live [--clients 200] [--events 100] [--rate 10] [--workers 2] [--http-seconds 5]

Needs DATABASE_URL (PostgreSQL) and REDIS_URL (`make bench-live` starts them with bench/with-services).
It creates the database ``registry_bench_live`` next to DATABASE_URL's, serves the HTTP API with
gunicorn's sync workers and the WebSockets with daphne (two processes, as docker-compose.yml's web and
live services), signs in ``--clients`` users and opens one socket for each, then changes a model
``--events`` times through the API (a tag, ``--rate`` per second). It prints the latency from each
event (its occurred_at) to its arrival at every socket, p50/p99/max, the messages received against
those expected, the API's latency for those writes, and, with ``--http-seconds``, the model list and
a model read driven by wrk against gunicorn and against daphne: the figure behind keeping the HTTP API
on gunicorn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

from bench.server import ROOT, Gunicorn, free_port, server_environment

DATABASE = "registry_bench_live"


class Daphne:
    """``daphne registry.asgi:application`` on a loopback port, as the live service runs it."""

    def __init__(self, *, env: dict[str, str], log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log_path = log_dir / f"daphne-{self.port}.log"

    def __enter__(self) -> Daphne:
        daphne = Path(sys.executable).with_name("daphne")
        self._log = self.log_path.open("ab")
        command = [str(daphne), "-b", "127.0.0.1", "-p", str(self.port), "registry.asgi:application"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"daphne did not answer /health; see {self.log_path}")

    def __exit__(self, *exc_info) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def prepare(clients: int) -> tuple[list[str], str, int]:
    """Session cookies of ``clients`` signed-in users, a JWT of the model's owner, and the model's id."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
    from django.core.management import call_command
    from django.utils.module_loading import import_string
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import User
    from mlmodels import services

    call_command("migrate", verbosity=0)
    owner, _ = User.objects.get_or_create(username="live-owner", defaults={"email": "live-owner@bench.example"})
    model = services.model_create(owner=owner, name=f"live-{int(time.time())}", framework="sklearn")
    existing = set(User.objects.filter(username__startswith="live-viewer-").values_list("username", flat=True))
    User.objects.bulk_create(
        # An unusable password: they only ever hold a session made below.
        User(username=name, email=f"{name}@bench.example", password=UNUSABLE_PASSWORD_PREFIX)
        for name in (f"live-viewer-{n}" for n in range(clients))
        if name not in existing
    )
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    backend = settings.AUTHENTICATION_BACKENDS[-1]
    cookies = []
    for viewer in User.objects.filter(username__startswith="live-viewer-").order_by("pk")[:clients]:
        session = store()
        session[SESSION_KEY] = str(viewer.pk)
        session[BACKEND_SESSION_KEY] = backend
        session[HASH_SESSION_KEY] = viewer.get_session_auth_hash()
        session.create()
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
    return cookies, str(RefreshToken.for_user(owner).access_token), model.pk


async def listen(url: str, origin: str, cookie: str, arrivals: list, ready: asyncio.Event, done: asyncio.Event):
    from websockets.asyncio.client import connect

    async with connect(url, origin=origin, additional_headers={"Cookie": cookie}, open_timeout=30) as socket:
        ready.set()
        while not done.is_set():
            try:
                text = await asyncio.wait_for(socket.recv(), timeout=0.5)
            except TimeoutError:
                continue
            arrivals.append((time.time(), json.loads(text)))


def change(api_url: str, token: str, model_id: int, events: int, rate: float, api_ms: list[float]) -> None:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    for n in range(events):
        started = time.perf_counter()
        response = session.put(f"{api_url}/api/v1/models/{model_id}/tags/bench/", json={"value": str(n)}, timeout=30)
        api_ms.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        time.sleep(max(0.0, 1 / rate - api_ms[-1] / 1000))


async def run_sockets(args, live: Daphne, cookies, token: str, model_id: int, api_url: str):
    url = f"ws://127.0.0.1:{live.port}/ws/events/"
    origin = live.url
    done = asyncio.Event()
    per_client: list[list] = [[] for _ in cookies]
    readies = [asyncio.Event() for _ in cookies]
    started = time.perf_counter()
    tasks = []
    for index, cookie in enumerate(cookies):
        tasks.append(asyncio.create_task(listen(url, origin, cookie, per_client[index], readies[index], done)))
        if index % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), timeout=60)
    print(f"{len(cookies)} sockets open in {time.perf_counter() - started:.1f} s", flush=True)

    api_ms: list[float] = []
    await asyncio.to_thread(change, api_url, token, model_id, args.events, args.rate, api_ms)
    expected = args.events * len(cookies)
    deadline = time.monotonic() + 10
    while sum(len(a) for a in per_client) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return per_client, api_ms


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


def report(args, per_client, api_ms) -> bool:
    latencies = []
    unique = 0
    duplicates = 0
    for arrivals in per_client:
        ids = set()
        for received_at, message in arrivals:
            if message["id"] in ids:
                duplicates += 1
                continue
            ids.add(message["id"])
            occurred = datetime.fromisoformat(message["occurred_at"]).timestamp()
            latencies.append((received_at - occurred) * 1000)
        unique += len(ids)
    expected = args.events * len(per_client)
    print(
        f"\nlive: {args.events} events x {len(per_client)} sockets: received {unique}/{expected} "
        f"(lost {expected - unique}, duplicates {duplicates})"
    )
    print(
        f"event -> every socket: p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
        f"max {max(latencies):.1f} ms"
        if latencies
        else "event -> every socket: nothing arrived"
    )
    print(
        f"API write (PUT tag, gunicorn, publishing its event): p50 {statistics.median(api_ms):.1f} ms, "
        f"p99 {percentile(api_ms, 0.99):.1f} ms"
    )
    return unique == expected


def http_comparison(args, gunicorn: Gunicorn, live: Daphne, token: str, model_id: int) -> None:
    from bench import wrk
    from bench.wrk import Workload

    workloads = [
        Workload("list", "GET", "/api/v1/models/?page_size=100", headers={"Authorization": f"Bearer {token}"}),
        Workload("get_model", "GET", f"/api/v1/models/{model_id}/", headers={"Authorization": f"Bearer {token}"}),
    ]
    print(f"\nHTTP API, wrk -c8 -d{args.http_seconds}s: gunicorn ({args.workers} sync workers) vs daphne (1 process)")
    for workload in workloads:
        for name, url in (("gunicorn", gunicorn.url), ("daphne", live.url)):
            result = wrk.run(url, workload, seconds=args.http_seconds, connections=8, threads=2)
            print(
                f"  {workload.name:<10} {name:<9} {result.requests_per_second:>8.1f} req/s "
                f"p50 {result.p50_ms:>6.1f} ms p99 {result.p99_ms:>6.1f} ms errors {result.errors}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="signed-in sockets (default 200)")
    parser.add_argument("--events", type=int, default=100, help="changes made through the API (default 100)")
    parser.add_argument("--rate", type=float, default=10, help="changes per second (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--http-seconds", type=int, default=0, help="also compare the HTTP API on both servers")
    args = parser.parse_args(argv)

    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        print("bench.live needs DATABASE_URL=postgres://… and REDIS_URL (make bench-live starts both)", file=sys.stderr)
        return 2
    from bench.run import create_database, database_url_for

    create_database(base_url, DATABASE)
    env = server_environment(DATABASE_URL=database_url_for(base_url, DATABASE), ACCESS_TOKEN_MINUTES="600")  # noqa: S106 -- minutes
    os.environ.update(env)
    import django

    django.setup()
    cookies, token, model_id = prepare(args.clients)
    from django.db import connection

    connection.close()

    log_dir = Path(tempfile.mkdtemp(prefix="registry-bench-live-"))
    print(f"== gunicorn ({args.workers} workers) for the API, daphne for /ws/, Redis layer; logs in {log_dir}")
    with Gunicorn(workers=args.workers, env=env, log_dir=log_dir) as gunicorn, Daphne(env=env, log_dir=log_dir) as live:
        per_client, api_ms = asyncio.run(run_sockets(args, live, cookies, token, model_id, gunicorn.url))
        complete = report(args, per_client, api_ms)
        print(f"server RSS: gunicorn {gunicorn.rss() / 2**20:.0f} MiB, daphne {live_rss(live):.0f} MiB")
        if args.http_seconds:
            http_comparison(args, gunicorn, live, token, model_id)
    return 0 if complete else 1


def live_rss(live: Daphne) -> float:
    from bench.server import process_tree_rss

    return process_tree_rss(live.process.pid) / 2**20


if __name__ == "__main__":
    sys.exit(main())
