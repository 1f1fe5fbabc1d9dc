# The complaints worker. In docker-compose.yml it talks to a real Temporal
# server and PostgreSQL (TEMPORAL_ADDRESS, DATABASE_URL); nothing embedded runs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so code changes reuse this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself (see .dockerignore for what stays out).
COPY . .
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --create-home --home-dir /home/complaints complaints \
    && mkdir -p /home/complaints/data \
    && chown complaints: /home/complaints/data

USER complaints
ENV COMPLAINTS_DATA_DIR=/home/complaints/data \
    LOG_FORMAT=json

# worker.py stops cleanly on SIGTERM (docker stop) and exits with its true status.
CMD ["python", "worker.py"]
