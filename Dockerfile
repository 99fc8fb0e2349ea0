# syntax=docker/dockerfile:1
# Every Switchboard service from one Dockerfile: the images differ only in the module they run,
# so each service is a build target of two lines over one shared runtime stage.
# Build from the repository root (the images need the shared kit and contracts):
#   docker build --target ingest -t switchboard/ingest:$(git describe --always) .
# (targets: ingest, crm, routing, analytics, notifier). Each runs `python -m <service>` as uid
# 10001 on a read-only root filesystem (mount an emptyDir at /tmp); the same image runs the
# migration Job: `switchboard migrate <service>`.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# compilers only here, for a dependency without a wheel for this platform
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml ./
COPY libs ./libs
COPY contracts ./contracts
COPY services ./services
# a regular (not editable) install: the venv alone is copied into the final stage
RUN pip install --upgrade pip setuptools wheel \
 && pip install . \
 && python -m compileall -q /opt/venv/lib \
 && python -c "import switchboard.cli; \
import ingest.app, crm.app, routing.app, analytics.app, notifier.app"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SB_HOST=0.0.0.0 \
    SB_PORT=8000
RUN groupadd --system --gid 10001 switchboard \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin switchboard
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
STOPSIGNAL SIGTERM

FROM runtime AS ingest
ENTRYPOINT ["python", "-m", "ingest"]

FROM runtime AS crm
ENTRYPOINT ["python", "-m", "crm"]

FROM runtime AS routing
ENTRYPOINT ["python", "-m", "routing"]

FROM runtime AS analytics
ENTRYPOINT ["python", "-m", "analytics"]

FROM runtime AS notifier
ENTRYPOINT ["python", "-m", "notifier"]
