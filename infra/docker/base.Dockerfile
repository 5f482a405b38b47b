# syntax=docker/dockerfile:1
# The runtime every CPU service image starts from: Python 3.11, TuneFlow in /opt/venv with
# CPU-only torch, an unprivileged `tuneflow` user. Its default command applies database
# migrations, which is the job Compose runs it for (`db-migrate`); the service images name it
# as their `tuneflow-base` build context. By hand:
#   docker build -f infra/docker/base.Dockerfile -t tuneflow/base:0.1.0 .
#   docker build -f infra/docker/gateway.Dockerfile \
#     --build-context tuneflow-base=docker-image://tuneflow/base:0.1.0 -t tuneflow/gateway:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The CPU wheel: the default PyPI torch pulls several GB of CUDA libraries.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY infra/docker/install-tuneflow.sh infra/docker/
COPY shared/ shared/
COPY services/ services/
COPY frontend/ frontend/
COPY tuneflow/ tuneflow/
RUN TORCH_INDEX_URL="${TORCH_INDEX_URL}" sh infra/docker/install-tuneflow.sh

FROM ${PYTHON_IMAGE}
# cache/ exists in the image so that a named volume mounted there starts owned by tuneflow.
RUN groupadd --system --gid 10001 tuneflow \
    && useradd --system --uid 10001 --gid tuneflow --create-home --home-dir /home/tuneflow tuneflow \
    && mkdir -p /var/lib/tuneflow/cache \
    && chown -R tuneflow:tuneflow /var/lib/tuneflow
COPY --from=build /opt/venv /opt/venv
COPY --chmod=0755 infra/docker/healthcheck.py /usr/local/bin/tuneflow-healthcheck
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TUNEFLOW_MODE=distributed \
    TUNEFLOW_HOME=/var/lib/tuneflow \
    TUNEFLOW_MODEL_CACHE=/var/lib/tuneflow/cache/models \
    HF_HOME=/var/lib/tuneflow/cache/huggingface
# Numeric, so runtimes that enforce non-root (Kubernetes runAsNonRoot) can verify it.
USER 10001:10001
WORKDIR /var/lib/tuneflow
CMD ["tuneflow", "db", "upgrade"]
