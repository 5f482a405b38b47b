# syntax=docker/dockerfile:1
# Training worker with CUDA torch and DeepSpeed, for hosts with an NVIDIA GPU.
# Compose runs it in the `gpu` profile with an NVIDIA device reservation.
#
# Built on its own rather than on tuneflow-base, which carries CPU torch: torch is installed
# first and alone, so the CUDA build has to be chosen before anything else. The CUDA
# libraries come inside torch's wheels (nvidia-* packages), so the host needs only the NVIDIA
# driver and the NVIDIA Container Toolkit. Pick the index that matches the host driver.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY infra/docker/install-tuneflow.sh infra/docker/
COPY shared/ shared/
COPY services/ services/
COPY frontend/ frontend/
COPY tuneflow/ tuneflow/
RUN TORCH_INDEX_URL="${TORCH_INDEX_URL}" GPU_PACKAGES="deepspeed" sh infra/docker/install-tuneflow.sh

FROM ${PYTHON_IMAGE}
# Triton (behind torch.compile and the deepspeed kernels) compiles a small C launcher at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
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
CMD ["tuneflow", "worker", "training"]
