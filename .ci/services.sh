# shellcheck shell=bash
# Throw-away PostgreSQL 15, Redis and an S3 server (moto's) on loopback, for the services test pass.
#
# Sourced by .ci/run; a developer can use it too, from the repo root, after `make test` has made .venv
# (moto_server comes from requirements-ci.txt: `.venv/bin/python -m pip install -r requirements-ci.txt`):
#
#   source .ci/services.sh
#   services_install      # apt-get install postgresql / redis-server / nginx if missing (needs root or sudo);
#                         # nginx is not started here: the tests marked `nginx` run their own
#   services_start        # starts all three, creates the bucket, exports DATABASE_URL, REDIS_URL, AWS_*
#   REQUIRE_SERVICES=1 make test
#   services_stop         # stops what services_start started, removes its temp dir, unsets the env
#
#   browser_install       # apt-get install chromium if /usr/bin/chromium is missing, for the tests
#                         # marked `browser` (Playwright drives it; REQUIRE_BROWSER=1 make test)
#
# Everything lives in one `mktemp -d` folder (data, sockets, logs); nothing is persisted. Ports default
# to 15432 / 16379 / 15000 and fall back to a free one when taken. Functions return non-zero on failure
# (they never `exit`), so they are safe to use in an interactive shell.

SERVICES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICES_PGBIN=${SERVICES_PGBIN:-/usr/lib/postgresql/15/bin}
SERVICES_VENV=${SERVICES_VENV:-$SERVICES_ROOT/.venv}
SERVICES_BUCKET=${SERVICES_BUCKET:-ml-models}
SERVICES_WAIT_SECONDS=${SERVICES_WAIT_SECONDS:-30}

_svc_say() { printf '[services %s] %s\n' "$(date '+%H:%M:%S')" "$*"; }
_svc_err() { printf '[services %s] ERROR: %s\n' "$(date '+%H:%M:%S')" "$*" >&2; }

# Python for small helpers (free port, HTTP probe): the system one, or the venv's.
_svc_python() {
    if command -v python3 >/dev/null 2>&1; then python3 "$@"; else "$SERVICES_VENV/bin/python" "$@"; fi
}

# Print the last lines of a log file, framed, to stderr.
_svc_tail() {
    local name=$1 file=$2
    {
        echo "----- last lines of $name log ($file) -----"
        if [[ -f $file ]]; then tail -n "${3:-40}" "$file"; else echo "(no log file)"; fi
        echo "----- end of $name log -----"
    } >&2
}

# Print the logs of all three services (used by .ci/run when the services pass fails).
services_logs() {
    [[ -n ${SERVICES_DIR:-} && -d ${SERVICES_DIR:-} ]] || return 0
    _svc_tail postgres "$SERVICES_DIR/postgres/server.log" "${1:-20}"
    _svc_tail redis "$SERVICES_DIR/redis/redis.log" "${1:-20}"
    _svc_tail moto "$SERVICES_DIR/moto.log" "${1:-20}"
}

# The preferred port if nothing listens on 127.0.0.1:PORT, else a free one the kernel picks.
_svc_free_port() {
    _svc_python - "$1" <<'PY'
import socket, sys

def bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As the servers do: a port left in TIME_WAIT by an earlier run is free, a listening one is not.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return s.getsockname()[1]
    except OSError:
        return None
    finally:
        s.close()

print(bind(int(sys.argv[1])) or bind(0))
PY
}

# Retry CMD... once every 0.2 s until it succeeds or SERVICES_WAIT_SECONDS pass.
_svc_wait() {
    local what=$1; shift
    local deadline=$((SECONDS + SERVICES_WAIT_SECONDS))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            _svc_err "$what did not answer within ${SERVICES_WAIT_SECONDS}s"
            return 1
        fi
        sleep 0.2
    done
}

# PostgreSQL refuses to run as root: as root run its tools as the postgres user.
_svc_as_pg() {
    if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

# apt-get as root (or through sudo); `apt-get update` runs once per shell, before the first install.
_svc_apt() {
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}
_svc_apt_install() {
    if [[ -z ${_SVC_APT_UPDATED:-} ]]; then
        _svc_apt update -q || return 1
        _SVC_APT_UPDATED=1
    fi
    _svc_apt install -y -q "$@"
}

# Install PostgreSQL 15, Redis and nginx from Debian when missing (apt-get update only if something
# is). nginx is for the tests marked `nginx` (test_slow_clients.py), which start it themselves in
# front of gunicorn; Debian puts it in /usr/sbin, which a non-root PATH may lack.
services_install() {
    local missing=()
    [[ -x $SERVICES_PGBIN/pg_ctl && -x $SERVICES_PGBIN/initdb ]] || missing+=(postgresql)
    { command -v redis-server && command -v redis-cli; } >/dev/null 2>&1 || missing+=(redis-server)
    { [[ -x /usr/sbin/nginx ]] || command -v nginx; } >/dev/null 2>&1 || missing+=(nginx)
    command -v make >/dev/null 2>&1 || missing+=(make)
    if ((${#missing[@]} == 0)); then
        _svc_say "system packages present (PostgreSQL 15, Redis, nginx, make)"
        return 0
    fi
    _svc_say "installing: ${missing[*]}"
    _svc_apt_install --no-install-recommends "${missing[@]}" || return 1
    if [[ ! -x $SERVICES_PGBIN/pg_ctl ]]; then
        _svc_err "installed postgresql, but $SERVICES_PGBIN/pg_ctl is missing (not PostgreSQL 15?)"
        return 1
    fi
}

# Install Debian's Chromium when /usr/bin/chromium is missing: Playwright cannot download a browser
# of its own here, so the browser tests launch this one (conftest.py). With its recommended packages
# (fonts among them), as it was tried: ~130 packages, ~30 s, ~480 MB.
browser_install() {
    local chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
    if [[ -x $chromium ]]; then
        _svc_say "Chromium present ($chromium)"
        return 0
    fi
    _svc_say "installing: chromium"
    _svc_apt_install chromium || return 1
    if [[ ! -x $chromium ]]; then
        _svc_err "installed chromium, but $chromium is missing"
        return 1
    fi
}

_svc_start_postgres() {
    local pgdir=$SERVICES_DIR/postgres
    SERVICES_PG_PORT=$(_svc_free_port 15432) || return 1
    mkdir -p "$pgdir" && echo registry >"$pgdir/pw" || return 1
    if ((EUID == 0)); then chown -R postgres:postgres "$pgdir" || return 1; fi
    chmod 700 "$pgdir"
    SERVICES_PG_DATA=$pgdir/data
    _svc_say "PostgreSQL: initdb + start on 127.0.0.1:$SERVICES_PG_PORT (data in $SERVICES_PG_DATA)"
    # cd into the folder postgres owns, so its tools don't warn about an unreadable working dir.
    if ! (cd "$pgdir" && _svc_as_pg "$SERVICES_PGBIN/initdb" -D "$SERVICES_PG_DATA" -U postgres \
        --pwfile="$pgdir/pw" --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 \
        >"$pgdir/initdb.log" 2>&1); then
        _svc_err "initdb failed"
        _svc_tail initdb "$pgdir/initdb.log"
        return 1
    fi
    if ! (cd "$pgdir" && _svc_as_pg "$SERVICES_PGBIN/pg_ctl" -D "$SERVICES_PG_DATA" \
        -l "$pgdir/server.log" -w -t "$SERVICES_WAIT_SECONDS" start \
        -o "-c listen_addresses=127.0.0.1 -c port=$SERVICES_PG_PORT -c unix_socket_directories=$pgdir -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
        >/dev/null); then
        _svc_err "PostgreSQL did not start"
        _svc_tail postgres "$pgdir/server.log"
        return 1
    fi
    if ! _svc_wait PostgreSQL "$SERVICES_PGBIN/pg_isready" -q -h 127.0.0.1 -p "$SERVICES_PG_PORT"; then
        _svc_tail postgres "$pgdir/server.log"
        return 1
    fi
    if ! PGPASSWORD=registry "$SERVICES_PGBIN/createdb" -h 127.0.0.1 -p "$SERVICES_PG_PORT" \
        -U postgres registry; then
        _svc_err "createdb registry failed"
        _svc_tail postgres "$pgdir/server.log"
        return 1
    fi
}

_svc_start_redis() {
    local rdir=$SERVICES_DIR/redis
    SERVICES_REDIS_PORT=$(_svc_free_port 16379) || return 1
    mkdir -p "$rdir" || return 1
    _svc_say "Redis: start on 127.0.0.1:$SERVICES_REDIS_PORT"
    if ! redis-server --bind 127.0.0.1 --port "$SERVICES_REDIS_PORT" --daemonize yes \
        --save '' --appendonly no --dir "$rdir" --pidfile "$rdir/redis.pid" \
        --logfile "$rdir/redis.log" </dev/null; then
        _svc_err "redis-server did not start"
        _svc_tail redis "$rdir/redis.log"
        return 1
    fi
    if ! _svc_wait Redis _svc_redis_pong; then
        _svc_tail redis "$rdir/redis.log"
        return 1
    fi
}

_svc_redis_pong() {
    [[ $(redis-cli -h 127.0.0.1 -p "$SERVICES_REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

_svc_start_s3() {
    local log=$SERVICES_DIR/moto.log
    if [[ ! -x $SERVICES_VENV/bin/moto_server ]]; then
        _svc_err "$SERVICES_VENV/bin/moto_server is missing: pip install -r requirements-ci.txt into the venv"
        return 1
    fi
    SERVICES_S3_PORT=$(_svc_free_port 15000) || return 1
    _svc_say "S3 (moto_server): start on 127.0.0.1:$SERVICES_S3_PORT"
    "$SERVICES_VENV/bin/moto_server" -H 127.0.0.1 -p "$SERVICES_S3_PORT" </dev/null >"$log" 2>&1 &
    SERVICES_MOTO_PID=$!
    local deadline=$((SECONDS + SERVICES_WAIT_SECONDS))
    until _svc_moto_up >/dev/null 2>&1; do
        if ! kill -0 "$SERVICES_MOTO_PID" 2>/dev/null; then
            _svc_err "moto_server exited before it answered"
            _svc_tail moto "$log"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            _svc_err "moto_server did not answer within ${SERVICES_WAIT_SECONDS}s"
            _svc_tail moto "$log"
            return 1
        fi
        sleep 0.2
    done
    _svc_say "S3: create bucket $SERVICES_BUCKET"
    if ! S3_ENDPOINT="http://127.0.0.1:$SERVICES_S3_PORT" S3_BUCKET=$SERVICES_BUCKET \
        "$SERVICES_VENV/bin/python" - <<'PY'
import os

import boto3
from botocore.config import Config

s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["S3_ENDPOINT"],
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
    region_name="us-east-1",
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
)
s3.create_bucket(Bucket=os.environ["S3_BUCKET"])
s3.head_bucket(Bucket=os.environ["S3_BUCKET"])
PY
    then
        _svc_err "could not create the bucket $SERVICES_BUCKET"
        _svc_tail moto "$log"
        return 1
    fi
}

# moto is up when it answers an HTTP GET.
_svc_moto_up() {
    _svc_python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "http://127.0.0.1:$SERVICES_S3_PORT/"
}

# Start all three and export the settings that point the app at them. On failure it prints the logs,
# stops whatever did start, and returns 1.
services_start() {
    if [[ -n ${SERVICES_DIR:-} ]]; then
        _svc_err "services already started (SERVICES_DIR=$SERVICES_DIR): services_stop first"
        return 1
    fi
    SERVICES_DIR=$(mktemp -d "${TMPDIR:-/tmp}/registry-services.XXXXXX") || return 1
    chmod 755 "$SERVICES_DIR" # the postgres user must reach its own subfolder
    if ! { _svc_start_postgres && _svc_start_redis && _svc_start_s3; }; then
        _svc_err "services did not start; stopping what did"
        services_stop
        return 1
    fi
    export DATABASE_URL="postgres://postgres:registry@127.0.0.1:$SERVICES_PG_PORT/registry"
    export REDIS_URL="redis://127.0.0.1:$SERVICES_REDIS_PORT/0"
    export AWS_S3_ENDPOINT_URL="http://127.0.0.1:$SERVICES_S3_PORT"
    export AWS_ACCESS_KEY_ID=testing
    export AWS_SECRET_ACCESS_KEY=testing
    export AWS_STORAGE_BUCKET_NAME=$SERVICES_BUCKET
    _svc_say "ready: DATABASE_URL=$DATABASE_URL REDIS_URL=$REDIS_URL AWS_S3_ENDPOINT_URL=$AWS_S3_ENDPOINT_URL bucket=$AWS_STORAGE_BUCKET_NAME"
}

# Stop what services_start started (each part only if it was started), remove the temp dir and
# unset the exported settings. Safe to call twice, or after a partial start.
services_stop() {
    local pid i
    if [[ -n ${SERVICES_MOTO_PID:-} ]]; then
        if kill -0 "$SERVICES_MOTO_PID" 2>/dev/null; then
            kill "$SERVICES_MOTO_PID" 2>/dev/null
            for ((i = 0; i < 50; i++)); do
                kill -0 "$SERVICES_MOTO_PID" 2>/dev/null || break
                sleep 0.2
            done
            kill -9 "$SERVICES_MOTO_PID" 2>/dev/null
        fi
        wait "$SERVICES_MOTO_PID" 2>/dev/null
        _svc_say "S3 (moto_server, pid $SERVICES_MOTO_PID) stopped"
        unset SERVICES_MOTO_PID
    fi
    if [[ -n ${SERVICES_DIR:-} && -f $SERVICES_DIR/redis/redis.pid ]]; then
        pid=$(<"$SERVICES_DIR/redis/redis.pid")
        redis-cli -h 127.0.0.1 -p "$SERVICES_REDIS_PORT" shutdown nosave >/dev/null 2>&1
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null
        _svc_say "Redis (pid $pid) stopped"
    fi
    if [[ -n ${SERVICES_PG_DATA:-} && -f $SERVICES_PG_DATA/postmaster.pid ]]; then
        pid=$(head -n 1 "$SERVICES_PG_DATA/postmaster.pid")
        if ! (cd "$SERVICES_DIR/postgres" && _svc_as_pg "$SERVICES_PGBIN/pg_ctl" -D "$SERVICES_PG_DATA" \
            -w -t 30 stop -m fast >/dev/null 2>&1); then
            _svc_err "pg_ctl stop failed; killing postmaster $pid"
            kill -9 "$pid" 2>/dev/null
        fi
        _svc_say "PostgreSQL (pid $pid) stopped"
    fi
    if [[ -n ${SERVICES_DIR:-} ]]; then
        rm -rf "$SERVICES_DIR"
    fi
    unset SERVICES_DIR SERVICES_PG_DATA SERVICES_PG_PORT SERVICES_REDIS_PORT SERVICES_S3_PORT
    unset DATABASE_URL REDIS_URL AWS_S3_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
        AWS_STORAGE_BUCKET_NAME
    return 0
}
