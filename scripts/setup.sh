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
[ "${1:-}" = "--all" ] && extras="$extras,ray,finetune"
.venv/bin/python -m pip install --quiet -e ".[$extras]"
