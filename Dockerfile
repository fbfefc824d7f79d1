# The registry's web image: gunicorn serving registry.wsgi, static files collected at build time and
# served by whitenoise. Configuration comes from the environment at run time (see README.md); nothing
# secret is baked into the image. It is meant to run behind a buffering reverse proxy (nginx in
# docker-compose.yml), never facing clients itself: see the CMD.
FROM python:3.11-slim

# Read by the Python interpreter itself: no .pyc files in the image, logs unbuffered to stdout.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app

# An unprivileged user owns nothing in /app except media/ (only used when S3 is not configured).
RUN groupadd --system --gid 10001 registry \
    && useradd --system --uid 10001 --gid registry --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin registry

# Runtime dependencies only (test and lint tools live in requirements-dev.txt). psycopg[binary] and
# bcrypt ship wheels, so no compiler or libpq is needed. Installed before the code for layer caching.
COPY requirements.txt ./
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.txt

COPY . .

# collectstatic with DEBUG=0 so whitenoise's manifest storage writes the hashed, compressed files.
# The settings refuse to load without SECRET_KEY when DEBUG is off, so this one command gets a
# throwaway value inline: it is not an ENV, so it does not exist in the final image.
RUN chmod 0755 docker/entrypoint.sh \
    && DEBUG=0 SECRET_KEY=build-time-only-collectstatic-key-never-used-to-sign-anything-0123456789 \
       python manage.py collectstatic --noinput \
    && mkdir -p media \
    && chown registry:registry media

USER registry

# 8000: gunicorn (the CMD below); 8001: daphne, when docker-compose.yml's live service runs the image.
EXPOSE 8000
EXPOSE 8001

# The entrypoint applies migrations, then execs the command. gunicorn takes its worker count from
# WEB_CONCURRENCY (gunicorn reads that variable itself; docker-compose.yml sets it).
ENTRYPOINT ["/app/docker/entrypoint.sh"]
# --no-control-socket: gunicorn's control socket (for gunicornc) would go under $HOME, which the
# unprivileged user cannot write to; nothing in the container uses it.
# --timeout 300: a sync worker streams a whole artifact upload to S3 inside one request; at the
# default 30 s a 1 GiB upload was killed half-way.
# Sync workers serve one connection each, for as long as the client takes: facing clients directly,
# two that announced a body and sent 6 bytes of it held both workers for those 300 s and /health went
# silent. docker-compose.yml therefore publishes only nginx (docker/nginx.conf), which reads every
# request in full before a worker sees it and drops clients that stall; run the image the same way.
CMD ["gunicorn", "registry.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-", \
     "--worker-tmp-dir", "/dev/shm", "--no-control-socket", "--timeout", "300"]
