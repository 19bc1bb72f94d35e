#!/usr/bin/env bash
# The ladder walkthrough of docs/guides/ladder.md on the 24 sample letters with the embedded default (not a test:
# it prints what each step says). Runs in a fresh folder (default: a temporary one) so no earlier output counts:
#
#     bash bench/ladder_walkthrough.sh [FOLDER]
#
# Each step's output goes to FOLDER/<step>.txt (and --json ones to .json); the page's figures come from them.
# Slow: every letter is asked field by field by SmolLM2-135M on this machine's cores (~5 s a letter on 2 quiet
# cores; 200 s and more under a load of 16, where letters fail on document_deadline_s = 300 s: set
# EXTRACTOR_WALK_DEADLINE=1200 to write it into the folder's extractor.toml, and say so beside the figures).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${1:-$(mktemp -d -t ladder-walk-XXXX)}"
mkdir -p "$DIR" && cd "$DIR"
cp -r "$ROOT/inputs" "$ROOT/schemas" . && mkdir -p bench && cp -r "$ROOT/bench/labels" bench/
if [[ -n "${EXTRACTOR_WALK_DEADLINE:-}" ]]; then echo "document_deadline_s = $EXTRACTOR_WALK_DEADLINE" > extractor.toml; fi
X=("${PYTHON:-python}" -m extractor)
echo "folder $DIR, commit $(git -C "$ROOT" rev-parse --short HEAD)"
step() {  # step NAME ARGS...: the command's output to NAME.txt, its wall seconds printed
  local name=$1; shift
  local start=$SECONDS
  "${X[@]}" "$@" > "$name.txt" 2>&1 || echo "($name: exit $?)" >> "$name.txt"
  echo "== $name ($((SECONDS - start)) s): ${X[*]} $*"; cat "$name.txt"
}
step 1-run run inputs/ --no-progress
step 2-eval eval --labels bench/labels/cover_letters.jsonl
"${X[@]}" eval --json > 2-eval.json
step 3-experiment experiment inputs/ --labels bench/labels/cover_letters.jsonl --variant examples=static \
    --variant examples=similar:3 --no-progress
step 4-breakeven-95 breakeven --target 0.95
"${X[@]}" breakeven --target 0.95 --json > 4-breakeven-95.json
step 5-breakeven-60 breakeven --target 0.6
step 6-report report --target 0.95
step 7-export-finetune export finetune
