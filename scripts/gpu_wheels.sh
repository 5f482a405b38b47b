#!/usr/bin/env bash
# Wheels the GPU check needs that the lent GPU machine's image lacks (Python 3.12 there), pinned to
# requirements.lock, downloaded into the git-ignored .whl/: bitsandbytes alone in .whl/a (42 MiB) and the rest in
# .whl/b, since one device call carries at most 64 MiB. See docs/gpu.md.
#   scripts/gpu_wheels.sh            (run here, where pip reaches the package index)
set -euo pipefail
cd "$(dirname "$0")/.."
PURE_SDISTS="rouge-score"  # published as source only: built into a wheel here (pure Python, any platform)
NEEDED="alembic amqp annotated-types billiard bitsandbytes celery click-didyoumean click-plugins click-repl
datasets datasketch dill fastapi ijson kombu mako minio multiprocess peft prompt-toolkit pycryptodome argon2-cffi
argon2-cffi-bindings cffi pycparser pydantic pydantic-core pydantic-settings python-dotenv python-multipart redis
nltk sqlalchemy sse-starlette starlette transformers typing-inspection tzlocal uvicorn vine wcwidth"
pin_of() {
    grep -i -E "^${1//-/[-_]}==" requirements.lock || { echo "$1 is not in requirements.lock" >&2; exit 1; }
}
pins=()
for name in $NEEDED; do
    pins+=("$(pin_of "$name")")
done
rm -rf .whl && mkdir -p .whl/a .whl/b
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl/b "${pins[@]}"
for name in $PURE_SDISTS; do
    python3 -m pip wheel -q --no-deps -w .whl/b "$(pin_of "$name")"
done
mv .whl/b/bitsandbytes-*.whl .whl/a/
du -sh .whl/a .whl/b
