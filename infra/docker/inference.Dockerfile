# syntax=docker/dockerfile:1
# Inference service (CPU torch): by default the OpenAI-compatible server on :8001; the same
# image runs the batch worker with `tuneflow worker inference` (Compose then disables the
# health check, which probes the server). The CUDA variant is inference.cuda.Dockerfile.
# `tuneflow-base` is the named build context from base.Dockerfile, not a registry image.
# hadolint ignore=DL3006
FROM tuneflow-base
EXPOSE 8001
# Loading a model (a hub download on first start) takes a while: a generous start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=4 \
    CMD ["tuneflow-healthcheck", "http://127.0.0.1:8001/healthz"]
CMD ["tuneflow", "serve", "--platform", "--model", "Qwen/Qwen2.5-0.5B-Instruct", "--host", "0.0.0.0", "--port", "8001"]
