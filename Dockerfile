# syntax=docker/dockerfile:1.7@sha256:a57df69d0ea827fb7266491f2813635de6f17269be881f696fbfdf2d83dda33e
# One image for every Gleaner service: `docker run gleaner gateway|worker|scheduler|migrate`.
# The base by digest, so a rebuild gets the same bytes: python:3.11-slim-bookworm of 2026-08-25 (Python 3.11.16),
# the multi-platform index recorded in docker-library/repo-info (repos/python/remote/3.11-slim-bookworm.md).
# Update tag and digest together (deploy/README.md, "Images").
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:fe556eaffd0d96abd8685b83bb8a69addd0dc730fa193669a7df0d49ddcfac02

# Build stage: a wheel of Gleaner plus wheels of every dependency, so the runtime needs no compiler.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gleaner ./gleaner
RUN pip wheel --wheel-dir /wheels .

# Runtime stage: slim Python, the wheels installed, no build context, an unprivileged numeric user.
FROM ${PYTHON_IMAGE} AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    GLEANER_HTTP_HOST=0.0.0.0
RUN groupadd --system --gid 10001 gleaner \
    && useradd --system --uid 10001 --gid gleaner --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin gleaner
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/gleaner-*.whl
USER 10001:10001
WORKDIR /tmp
# gateway, worker, scheduler (GLEANER_HTTP_PORT overrides)
EXPOSE 8080 8081 8082
ENTRYPOINT ["gleaner"]
CMD ["gateway"]
