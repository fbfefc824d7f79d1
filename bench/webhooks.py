"""Webhook deliveries under a steady stream of lifecycle moves: latency after commit, none lost.

    python -m bench.webhooks [--rate 50] [--duration 30] [--webhooks 5] [--task-workers 2] [--pool threads]

Serves the app with gunicorn and runs Celery workers on the backing services the environment names
(`make bench-webhooks` starts PostgreSQL, Redis and the S3 server for it); registers --webhooks
webhooks (through the API) to a receiver this process runs on loopback, then moves models between
development and staging through the API at --rate moves a second for --duration seconds. Each move's
event reaches every webhook. The receiver verifies every request's signature with the Standard
Webhooks library and notes when it came; a delivery's latency is that time minus the event's
``occurred_at`` (stamped just before the change commits). Afterwards it waits for the stragglers and
reports p50/p99/max latency, the deliveries expected (moves times webhooks), received, lost and
duplicated. Exits 1 when one is lost or does not verify.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from standardwebhooks import Webhook as StandardWebhook

from bench.load import percentile
from bench.server import ROOT, Gunicorn, server_environment

API = "/api/v1"
MODELS = 25


class Receiver:
    """Records (path, webhook-id, latency) of every verified request; counts the ones that fail."""

    def __init__(self):
        self.secrets: dict[str, str] = {}
        self.received: list[tuple[str, str, float]] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    event = StandardWebhook(receiver.secrets[self.path]).verify(body, headers)
                    latency = arrived - datetime.fromisoformat(event["occurred_at"]).timestamp()
                    with receiver.lock:
                        receiver.received.append((self.path, headers["webhook-id"], latency))
                    status = 204
                except Exception:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    status = 400
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def start_task_workers(count: int, env: dict, log_dir: Path, *, pool: str, concurrency: int) -> list[subprocess.Popen]:
    workers = []
    for index in range(count):
        log = (log_dir / f"worker-{index}.log").open("ab")
        command = [sys.executable, "-m", "celery", "-A", "registry", "worker", "--hostname", f"bench{index}@%h"]
        command += ["--pool", pool, "--concurrency", str(concurrency), "--loglevel", "WARNING", "--without-gossip"]
        command += ["--without-mingle", "--without-heartbeat"]
        workers.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log))
    return workers


def sign_in(base_url: str, run_id: str) -> requests.Session:
    from accounts.models import User

    username, password = f"hooks-{run_id}", secrets.token_urlsafe(24)
    User.objects.create_user(username=username, email=f"{username}@example.com", password=password)
    session = requests.Session()
    login = session.post(f"{base_url}{API}/auth/login/", json={"username": username, "password": password})
    login.raise_for_status()
    session.headers["Authorization"] = f"Bearer {login.json()['access']}"
    return session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="lifecycle moves a second (default 50)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of moves (default 30)")
    parser.add_argument("--webhooks", type=int, default=5, help="webhooks subscribed (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    # Measured on 2 cores: two workers of 8 threads deliver the most (prefork children wait on their
    # one task's HTTP call; more threads only contend for the lock).
    parser.add_argument("--task-workers", type=int, default=2, help="Celery workers (default 2)")
    parser.add_argument("--pool", default="threads", help="their pool, as `celery worker --pool` (default threads)")
    parser.add_argument("--concurrency", type=int, default=8, help="threads (or processes) each (default 8)")
    args = parser.parse_args(argv)
    if not os.environ.get("REDIS_URL"):
        print("bench.webhooks needs REDIS_URL (a broker): run it through `make bench-webhooks`", file=sys.stderr)
        return 2

    run_id = secrets.token_hex(3)
    log_dir = Path(tempfile.mkdtemp(prefix="registry-webhooks-"))
    env = server_environment(
        TASKS_EAGER="0", WEBHOOK_ALLOW_PRIVATE_NETWORKS="1", WEBHOOK_RETRY_BASE_SECONDS="1", MEDIA_ROOT=str(log_dir)
    )
    os.environ.update({key: env[key] for key in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT")})
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    receiver = Receiver()
    workers = start_task_workers(args.task_workers, env, log_dir, pool=args.pool, concurrency=args.concurrency)
    try:
        with Gunicorn(workers=args.workers, env=env, log_dir=log_dir) as server:
            session = sign_in(server.url, run_id)
            connection.close()
            for index in range(args.webhooks):
                path = f"/hook-{index}"
                made = session.post(
                    f"{server.url}{API}/webhooks/",
                    json={"url": receiver.url + path, "events": ["lifecycle.changed"]},
                )
                made.raise_for_status()
                receiver.secrets[path] = made.json()["secret"]
            models = []
            for index in range(MODELS):
                created = session.post(f"{server.url}{API}/models/", json={"name": f"hooks-{run_id}-{index}"})
                created.raise_for_status()
                models.append({"id": created.json()["id"], "stage": "development"})
            moves, failures = run_moves(server.url, session.headers["Authorization"], models, args)
            expected = moves * args.webhooks
            deadline = time.monotonic() + 120
            while len(receiver.received) < expected and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2)  # late duplicates, if any, come in too
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
    report(args, receiver, moves, failures, expected, log_dir)
    unique = len({(path, message) for path, message, _ in receiver.received})
    return 0 if unique == expected and not receiver.bad_signatures and not failures else 1


def run_moves(base_url: str, authorization: str, models: list[dict], args) -> tuple[int, int]:
    """Moves at a steady rate from a few threads, each model moved by one thread at a time."""
    threads = 4
    interval = threads / args.rate
    counts = Counter()
    lock = threading.Lock()
    started = time.monotonic()

    def mover(offset: int):
        session = requests.Session()
        session.headers["Authorization"] = authorization
        mine = models[offset::threads]
        tick = started + offset * (interval / threads)
        turn = 0
        while tick < started + args.duration:
            time.sleep(max(0.0, tick - time.monotonic()))
            model = mine[turn % len(mine)]
            target = "staging" if model["stage"] == "development" else "development"
            answer = session.patch(f"{base_url}{API}/models/{model['id']}/lifecycle/", json={"lifecycle": target})
            with lock:
                counts["ok" if answer.status_code == 200 else "failed"] += 1
            if answer.status_code == 200:
                model["stage"] = target
            turn += 1
            tick += interval

    workers = [threading.Thread(target=mover, args=(offset,)) for offset in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return counts["ok"], counts["failed"]


def report(args, receiver: Receiver, moves: int, failures: int, expected: int, log_dir: Path) -> None:
    latencies = sorted(latency * 1000 for _, _, latency in receiver.received)
    pairs = Counter((path, message) for path, message, _ in receiver.received)
    unique = len(pairs)
    duplicates = sum(count - 1 for count in pairs.values())
    print(
        json.dumps(
            {
                "moves_per_second": args.rate,
                "seconds": args.duration,
                "webhooks": args.webhooks,
                "moves": moves,
                "moves_refused": failures,
                "deliveries_expected": expected,
                "deliveries_received": unique,
                "lost": expected - unique,
                "duplicates": duplicates,
                "bad_signatures": receiver.bad_signatures,
                "latency_ms_p50": round(percentile(latencies, 0.50), 1),
                "latency_ms_p99": round(percentile(latencies, 0.99), 1),
                "latency_ms_max": round(latencies[-1], 1) if latencies else None,
                "logs": str(log_dir),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
