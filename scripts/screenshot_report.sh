#!/usr/bin/env bash
# Render a report HTML file to a PNG with headless Chromium: scripts/screenshot_report.sh REPORT.html OUT.png
# Needs /usr/bin/chromium (Debian: apt-get install -y chromium). Networking is switched off as far as flags
# allow; the report itself loads nothing. WIDTHxHEIGHT can be changed with SCREENSHOT_SIZE (default 1280,3000).
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 REPORT.html OUT.png" >&2
    exit 2
fi
report=$1
out=$2
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
    echo "error: $chromium not found (apt-get install -y chromium)" >&2
    exit 3
fi
if [[ ! -f $report ]]; then
    echo "error: $report does not exist" >&2
    exit 2
fi
report_abs=$(realpath "$report")
out_abs=$(realpath -m "$out")
mkdir -p "$(dirname "$out_abs")"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$out_abs"

# file:// of an absolute path; spaces and other characters percent-encoded.
url=$(python3 -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).as_uri())' "$report_abs")

timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --hide-scrollbars \
    --user-data-dir="$profile" --window-size="${SCREENSHOT_SIZE:-1280,3000}" \
    --screenshot="$out_abs" "$url" >"$profile/chromium.log" 2>&1 || {
    status=$?
    cat "$profile/chromium.log" >&2
    echo "error: chromium exited with $status" >&2
    exit 1
}
if [[ ! -s $out_abs ]]; then
    cat "$profile/chromium.log" >&2
    echo "error: chromium wrote no screenshot to $out_abs" >&2
    exit 1
fi
echo "$out_abs"
