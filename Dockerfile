# SMR. The image runs `smr serve` (API and scheduler in one process) on SQLite under /data (mount a
# volume there) by default; on PostgreSQL (SMR_DATABASE_URL) the same image runs `smr db upgrade`,
# `smr api --host 0.0.0.0` and `smr worker`, as docker-compose.yml does. No token or password is
# baked in: they come from the environment at run time.

# Build: the pinned, hash-checked dependencies of requirements.lock (`make lock` writes it), then
# SMR itself without resolving anything again, into a virtualenv the runtime stage copies.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/smr
WORKDIR /src
COPY requirements.lock ./
RUN /opt/smr/bin/pip install --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY smr ./smr
COPY adapters ./adapters
RUN /opt/smr/bin/pip install --no-deps . \
    && /opt/smr/bin/pip check

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/smr/bin:$PATH \
    SMR_DATA_DIR=/data \
    SMR_PLAYBOOKS_DIR=/app/playbooks
COPY --from=build /opt/smr /opt/smr
# The migrations are found in the working directory (smr/migrations.py).
WORKDIR /app
COPY alembic.ini ./
COPY alembic ./alembic
COPY playbooks ./playbooks
RUN useradd --system --uid 10001 --no-create-home --home-dir /app smr \
    && mkdir -p /data && chown smr /data

USER smr
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"
CMD ["smr", "serve", "--host", "0.0.0.0", "--port", "8000"]
