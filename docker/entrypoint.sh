#!/bin/sh
# Container start: bring the database schema up to date, then run the command (gunicorn by default,
# see the Dockerfile's CMD) as PID 1 so it receives the stop signal.
set -eu

python manage.py migrate --noinput

exec "$@"
