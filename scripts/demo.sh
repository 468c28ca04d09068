#!/usr/bin/env bash
# The main job end to end on the embedded synthetic data set: no network, no GPU needed.
. "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
OUT="${RECSYS_DEMO_DIR:-$ROOT/out/demo}"
python -m trainer --model all --data synthetic --out "$OUT/run" --report "$OUT/run/report.json"
