# Sourced by scripts/demo.sh and scripts/test.sh: creates or reuses .venv and installs
# the project into it, re-installing only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "creating virtual environment in .venv" >&2
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "installing recsys-serve and its dependencies into .venv (first run only)" >&2
    python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" >&2 || true
    # torch first and exactly pinned: a CPU wheel where one is offered locally; preinstall a CUDA
    # build of torch 2.13.0 in .venv to use a GPU, and this keeps it.
    python -m pip install --quiet "torch==2.13.0" 2>&1 | grep -v "is ignored" >&2 || true
    # The base install is the ONNX server only; "dev" pulls in "train" (torch-geometric, onnx, matplotlib:
    # what the demo and the tests train and export with) and "tracing", plus the test and lint tools.
    python -m pip install --quiet -e ".[dev]" 2>&1 | grep -v "is ignored" >&2 || true
    python -c "import torch, onnxruntime, grpc, torch_geometric, onnxscript, matplotlib, opentelemetry.sdk, yaml" \
        || { echo "error: installing into .venv failed; see pip's messages above" >&2; exit 1; }
    rm -f .venv/.installed-*
    touch "$stamp"
fi
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::DeprecationWarning:torch.jit}"
