#!/bin/sh
# Installs TuneFlow into /opt/venv the one way every image does it (run from the source root).
#
#   TORCH_INDEX_URL  wheel index torch comes from: .../whl/cpu, or a CUDA index such as .../whl/cu130
#   GPU_PACKAGES     names from pyproject's `gpu` extra to add (e.g. "vllm"), pinned from that extra
#
# torch goes first and alone from its index so that no dependency range can swap in another
# build of it; the rest is constrained by requirements.lock, exactly as `make install` does.
set -eu

: "${TORCH_INDEX_URL:?set TORCH_INDEX_URL to a PyTorch wheel index}"
GPU_PACKAGES="${GPU_PACKAGES:-}"

python -m venv /opt/venv
pip_install="/opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check"

torch_pin="$(grep -E '^torch==' requirements.lock)"
$pip_install --index-url "$TORCH_INDEX_URL" "$torch_pin"
$pip_install -c requirements.lock .

for name in $GPU_PACKAGES; do
    pin="$(/opt/venv/bin/python - "$name" <<'PY'
import sys, tomllib
wanted = sys.argv[1]
extra = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["gpu"]
pins = [p for p in extra if p.split("==")[0].split("[")[0] == wanted]
sys.exit(f"{wanted} is not in pyproject's gpu extra") if not pins else print(pins[0])
PY
)"
    # Only torch is held fixed here: GPU packages pin their own stacks, and a clash with the
    # torch above must fail the build rather than silently replace it.
    printf '%s\n' "$torch_pin" > /tmp/torch-constraint.txt
    $pip_install -c /tmp/torch-constraint.txt "$pin"
done
