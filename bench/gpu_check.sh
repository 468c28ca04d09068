#!/usr/bin/env bash
# GPU check, one script, under 10 minutes on a machine with an NVIDIA GPU:
#   1. fail fast (exit 2, nothing installed) when no GPU is visible (nvidia-smi missing or failing);
#   2. create or reuse .venv and install the project with the gpu and dev extras;
#   3. prove ONNX Runtime really loaded CUDAExecutionProvider (a session's get_providers(), not the
#      list of available providers) and that TorchScript runs on cuda (a tiny model's output device);
#   4. run the export-parity and server-parity tests (device auto picks CUDA when usable);
#   5. train on cuda: the device tests (a fit on cuda matches the CPU and returns a CPU model), every
#      architecture through recsys-train --device cuda, and two nccl ranks under torchrun (2+ GPUs);
#   6. run the serving benchmark's main rows briefly with --device cuda (servers refuse the CPU);
#   7. print one table of every step with pass/fail (SKIP does not fail it).
#
#   bash bench/gpu_check.sh                   # from the repository root
#   VENV=/path/to/venv bash bench/gpu_check.sh
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130 bash bench/gpu_check.sh
#
# Environment: VENV (default .venv), PYTHON (interpreter that creates it, default python3.11),
# TORCH_INDEX_URL (where a CUDA build of torch 2.13.0 comes from when the venv's torch has no CUDA),
# NVIDIA_SMI (default nvidia-smi; tests point it at a missing command), BENCH_DURATION (default 2 s).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
NVIDIA_SMI="${NVIDIA_SMI:-nvidia-smi}"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3.11}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cu130}"
BENCH_DURATION="${BENCH_DURATION:-2}"
OUT="${OUT:-out/gpu_check}"

if ! command -v "$NVIDIA_SMI" >/dev/null 2>&1; then
    echo "gpu_check: no GPU here: '$NVIDIA_SMI' was not found. Run this on a machine with an NVIDIA GPU and" \
         "its driver installed (nvidia-smi must work); nothing was installed." >&2
    exit 2
fi
if ! gpu_line="$("$NVIDIA_SMI" --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1)"; then
    echo "gpu_check: '$NVIDIA_SMI' failed, so no GPU is usable: $gpu_line. Fix the driver first; nothing was" \
         "installed." >&2
    exit 2
fi

mkdir -p "$OUT"
declare -a STEPS=() RESULTS=() DETAILS=()
record() { STEPS+=("$1"); RESULTS+=("$2"); DETAILS+=("$3"); }
# run NAME COMMAND...: run with a per-step time limit, keep the log, record pass/fail and the last log line
run() {
    local name="$1" limit="$2"
    shift 2
    local log="$OUT/${name// /_}.log" start end
    start=$(date +%s)
    if timeout "$limit" "$@" >"$log" 2>&1; then
        end=$(date +%s)
        record "$name" PASS "$(( end - start )) s; $(tail -n 1 "$log" | cut -c1-100)"
    else
        end=$(date +%s)
        record "$name" FAIL "$(( end - start )) s; see $log: $(tail -n 1 "$log" | cut -c1-100)"
    fi
}

record "GPU visible" PASS "$gpu_line"

if [ ! -x "$VENV/bin/python" ]; then
    run "create venv" 120 "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
run "pip install -e .[gpu,dev]" 300 "$PY" -m pip install -q -e ".[gpu,dev]"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    run "CUDA torch 2.13.0" 300 "$PY" -m pip install -q --force-reinstall --no-deps "torch==2.13.0" \
        --index-url "$TORCH_INDEX_URL"
fi

run "ONNX Runtime on CUDA" 120 "$PY" - <<'EOF'
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

graph = helper.make_graph(
    [helper.make_node("Add", ["x", "x"], ["y"])],
    "gpu_check",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
session = ort.InferenceSession(
    model.SerializeToString(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
)
loaded = session.get_providers()
if loaded[0] != "CUDAExecutionProvider":
    raise SystemExit(f"ONNX Runtime did not load CUDAExecutionProvider: the session runs on {loaded}")
out = session.run(None, {"x": np.ones((2, 4), np.float32)})[0]
assert np.allclose(out, 2.0), out
print(f"session providers {loaded}")
EOF

run "TorchScript on cuda" 120 "$PY" - <<'EOF'
import torch

if not torch.cuda.is_available():
    raise SystemExit(f"torch {torch.__version__} sees no CUDA device: install a CUDA build of torch 2.13.0")
model = torch.jit.script(torch.nn.Linear(4, 2)).to("cuda")
out = model(torch.ones(3, 4, device="cuda"))
if out.device.type != "cuda":
    raise SystemExit(f"TorchScript output is on {out.device}, not cuda")
print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}, output on {out.device}")
EOF

parity_tests=()
for test in tests/exporter/test_export.py tests/server/test_parity.py tests/server/test_runtime.py; do
    [ -f "$test" ] && parity_tests+=("$test")
done
RECSYS_DEVICE=cuda run "parity tests" 300 "$PY" -m pytest -q -p no:cacheprovider "${parity_tests[@]}"

run "training on cuda (tests)" 240 "$PY" -m pytest -q -p no:cacheprovider tests/trainer/test_devices.py
run "recsys-train --device cuda" 240 "$VENV/bin/recsys-train" --model all --device cuda --epochs 2 --no-progress \
    --out "$OUT/train"
gpus="$("$NVIDIA_SMI" --list-gpus 2>/dev/null | wc -l)"
if [ "$gpus" -ge 2 ]; then
    run "torchrun nccl, 2 ranks" 240 "$VENV/bin/torchrun" --standalone --nproc-per-node 2 -m trainer --model mf \
        --dist-backend nccl --epochs 2 --no-progress --out "$OUT/train_nccl"
else
    record "torchrun nccl, 2 ranks" SKIP "$gpus GPU: nccl needs one GPU per rank"
fi

run "bench.serving (cuda)" 420 "$PY" -m bench.serving --quick --duration "$BENCH_DURATION" --warmup 0.5 \
    --backends onnx,torchscript --batching on --archs mf,dense,lstm --server-arg=--device=cuda \
    --out "$OUT/serving"

echo
echo "| step | result | detail |"
echo "|---|---|---|"
failed=0
for i in "${!STEPS[@]}"; do
    echo "| ${STEPS[$i]} | ${RESULTS[$i]} | ${DETAILS[$i]//|//} |"
    [ "${RESULTS[$i]}" = FAIL ] && failed=1
done
if [ -f "$OUT/serving/serving.md" ]; then
    echo
    cat "$OUT/serving/serving.md"
fi
exit "$failed"
