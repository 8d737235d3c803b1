# syntax=docker/dockerfile:1.7
# RouteGuard container image.
#
#   docker build -t routeguard:0.1.0 .
#   docker run --rm -p 8080:8080 -v "$PWD/deploy/compose:/etc/routeguard:ro" routeguard:0.1.0
#
# Two stages: the first builds wheels (RouteGuard's and its dependencies'), the second installs
# them into a virtualenv with no network and no compiler. tests/deploy/test_dockerfile.py checks
# this file offline and runs its install and ENTRYPOINT steps in a fresh virtualenv.

# Exact tags, the same in both stages: a rebuild gets the same Python. Pin by digest
# (python:3.12.8-slim-bookworm@sha256:...) in your registry mirror for byte-for-byte builds.
FROM python:3.12.8-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --wheel-dir /wheels .

FROM python:3.12.8-slim-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="RouteGuard" \
      org.opencontainers.image.description="Production LLM model router with an OpenAI-compatible API" \
      org.opencontainers.image.source="https://github.com/routeguard/routeguard" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/routeguard/bin:$PATH
# Only the wheels cross over (a bind mount, not a layer): no source, tests or build tools.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/routeguard \
    && /opt/routeguard/bin/pip install --no-index --find-links /wheels routeguard
# A fixed non-root user; the only writable paths are /srv/primarch (decisions log, reports,
# as in the runbook) and /tmp, so the root filesystem can be mounted read-only.
RUN groupadd --system --gid 10001 routeguard \
    && useradd --system --uid 10001 --gid 10001 --home-dir /srv/primarch --no-create-home routeguard \
    && mkdir -p /etc/routeguard /srv/primarch/reports \
    && chown -R 10001:10001 /srv/primarch
USER 10001:10001
WORKDIR /srv/primarch
VOLUME ["/srv/primarch"]
EXPOSE 8080
# SIGTERM drains (server.drain_timeout_s); give `docker stop -t` at least that long.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
ENTRYPOINT ["routeguard", "serve", "--config", "/etc/routeguard/router.yaml"]
