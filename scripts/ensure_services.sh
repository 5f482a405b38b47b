#!/usr/bin/env bash
# Starts Redis and PostgreSQL when they are installed but not answering. The test bed starts its own
# redis-server on a free port and falls back to SQLite when neither is possible, so this is best effort.
set -u
if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    mkdir -p /tmp/tuneflow-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp/tuneflow-redis --logfile /tmp/tuneflow-redis/redis.log || true
  fi
fi
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
exit 0
