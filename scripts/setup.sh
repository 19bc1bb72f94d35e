#!/usr/bin/env bash
# Create .venv and install extractor with the embedded model, OCR for scans and photos, and the test tools.
# `--all` adds what the whole test suite also exercises: Ray (`--engine ray`) and local fine-tuning (torch,
# transformers, peft, gguf: the slow test of `extractor finetune-local` trains on CPU).
# llama-cpp-python has no prebuilt Linux wheel: pip builds it once (about 7 minutes on 2 cores) and
# caches the wheel. Built portable: a native build crashed with SIGILL on VMs that advertise AMX.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
.venv/bin/python -m pip install --quiet --upgrade pip
extras="local,ocr,test"
if [ "${1:-}" = "--all" ]; then
  extras="$extras,ray,finetune"
  # torch's CPU build where this machine's wheel folder holds one (about 750 MB installed): resolved from the
  # index, torch brings its CUDA libraries (4.4 GB and more than 14 minutes measured, unfinished, at load 20).
  tag=$(.venv/bin/python -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  cpu_torch=$(ls /opt/wheels/torch-*+cpu-"$tag"-*.whl 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$cpu_torch" ]; then .venv/bin/python -m pip install --quiet "$cpu_torch"; fi
fi
.venv/bin/python -m pip install --quiet -e ".[$extras]"
