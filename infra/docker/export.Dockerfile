# syntax=docker/dockerfile:1
# Export service worker: merges adapters, quantizes and packages models from the `export` queue.
# No HEALTHCHECK: a worker runs one task at a time on the solo pool, so it cannot answer a
# ping while a long job runs and would be marked unhealthy exactly when it is busiest.
# `tuneflow-base` is the named build context from base.Dockerfile, not a registry image.
# hadolint ignore=DL3006
FROM tuneflow-base
CMD ["tuneflow", "worker", "export"]
