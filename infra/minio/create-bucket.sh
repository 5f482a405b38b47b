#!/bin/sh
# One-shot MinIO setup, run by the `minio-init` Compose job once MinIO is healthy: the bucket
# that holds every TuneFlow object, and a non-admin user (built-in `readwrite` policy) that the
# services sign in with, so no service holds the root credentials. Safe to re-run.
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${TUNEFLOW_S3_BUCKET:?}" "${TUNEFLOW_S3_ACCESS_KEY:?}" "${TUNEFLOW_S3_SECRET_KEY:?}"

mc alias set tuneflow "${MINIO_URL:-http://minio:9000}" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "tuneflow/$TUNEFLOW_S3_BUCKET"
mc admin user add tuneflow "$TUNEFLOW_S3_ACCESS_KEY" "$TUNEFLOW_S3_SECRET_KEY"

# Attaching a policy that is already attached is an error in mc, hence the check first.
user_info="$(mc admin user info tuneflow "$TUNEFLOW_S3_ACCESS_KEY")"
case "$user_info" in
    *readwrite*) ;;
    *) mc admin policy attach tuneflow readwrite --user "$TUNEFLOW_S3_ACCESS_KEY" ;;
esac
echo "bucket $TUNEFLOW_S3_BUCKET ready for user $TUNEFLOW_S3_ACCESS_KEY"
