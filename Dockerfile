# SMR: API + scheduler in one process on SQLite under /data (mount a volume there),
# or on PostgreSQL with SMR_DATABASE_URL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SMR_DATA_DIR=/data \
    SMR_PLAYBOOKS_DIR=/app/playbooks

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY smr ./smr
COPY adapters ./adapters
COPY alembic ./alembic
COPY playbooks ./playbooks
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app smr \
    && mkdir -p /data && chown smr /data

USER smr
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"
CMD ["smr", "serve", "--host", "0.0.0.0", "--port", "8000"]
