# syntax=docker/dockerfile:1
# API gateway: applies database migrations, then serves the HTTP API on :8000. It is healthy
# only while /healthz reports database, broker and object store reachable.
# `tuneflow-base` is the named build context from base.Dockerfile, not a registry image.
# hadolint ignore=DL3006
FROM tuneflow-base
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=4 \
    CMD ["tuneflow-healthcheck", "http://127.0.0.1:8000/healthz"]
CMD ["tuneflow", "gateway", "--host", "0.0.0.0", "--port", "8000"]
