# syntax=docker/dockerfile:1
# Flower on :5555: live view of the Celery queues and workers. It needs no app import, only
# the broker (celery reads BROKER_URL); basic auth comes from FLOWER_BASIC_AUTH. Compose sets both.
# `tuneflow-base` is the named build context from base.Dockerfile, not a registry image.
# hadolint ignore=DL3006
FROM tuneflow-base
EXPOSE 5555
# /healthcheck is Flower's unauthenticated liveness page.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["tuneflow-healthcheck", "http://127.0.0.1:5555/healthcheck"]
CMD ["celery", "flower", "--port=5555"]
