#!/usr/bin/env bash
# The main job end to end on the embedded synthetic data set (no network, no GPU needed):
# train all four models, export them into a model repository, serve it over gRPC,
# query it with the Python client, load-test it for a few seconds, and stop the server.
# Set RECSYS_DEMO_DATA to a MovieLens folder (e.g. ../shared/data/ml-100k) to use real data.
. "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
OUT="${RECSYS_DEMO_DIR:-$ROOT/out/demo}"
DATA="${RECSYS_DEMO_DATA:-synthetic}"
PORT="${RECSYS_DEMO_PORT:-$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
METRICS_PORT="$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
rm -rf "$OUT" && mkdir -p "$OUT"

echo "== 1/5 train (data: $DATA)"
python -m trainer --model all --data "$DATA" --out "$OUT/run" --report "$OUT/run/report.json"

echo "== 2/5 export into $OUT/repository"
python -m exporter --run "$OUT/run" --repository "$OUT/repository"

echo "== 3/5 serve on 127.0.0.1:$PORT (metrics on :$METRICS_PORT)"
python -m server --repository "$OUT/repository" --port "$PORT" --metrics-port "$METRICS_PORT" \
    --log-level WARNING &
SERVER_PID=$!
trap 'kill -TERM "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null' EXIT

USER_ID="$(python -c 'import numpy as np, sys; print(np.load(sys.argv[1] + "/mf/1/user_ids.npy")[0])' "$OUT/repository")"
ITEMS="$(python -c 'import numpy as np, sys; print(" ".join(np.load(sys.argv[1] + "/mf/1/item_ids.npy")[:3]))' "$OUT/repository")"
echo "== 4/5 query every model for user $USER_ID"
for model in mf dense lstm gcn; do
    python -m client --target "127.0.0.1:$PORT" --model "$model" --user "$USER_ID" --items $ITEMS --k 5
done

echo "== 5/5 load test (a few seconds per step)"
python -m loadtest --target "127.0.0.1:$PORT" --model mf --method predict --repository "$OUT/repository" \
    --concurrency 1,8,64 --duration 3 --warmup 1 --metrics-url "http://127.0.0.1:$METRICS_PORT/metrics" \
    --server-pid "$SERVER_PID" --json "$OUT/loadtest.json" --plot "$OUT/loadtest.png"

kill -TERM "$SERVER_PID" && wait "$SERVER_PID"
trap - EXIT
echo "done: run in $OUT/run, repository in $OUT/repository, load test in $OUT/loadtest.{json,png}"
