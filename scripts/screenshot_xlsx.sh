#!/usr/bin/env bash
# Render the first printed page of a spreadsheet to a PNG, as LibreOffice prints it:
# scripts/screenshot_xlsx.sh results.xlsx out.png [DPI]   (default 60 dots per inch)
# Needs soffice (Debian: libreoffice-calc) and pdftoppm (poppler-utils).
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: $0 SHEET.xlsx OUT.png [DPI]" >&2
    exit 2
fi
sheet=$1
out=$2
dpi=${3:-60}
for tool in soffice pdftoppm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool not found (apt-get install -y libreoffice-calc poppler-utils)" >&2
        exit 3
    fi
done
if [[ ! -f $sheet ]]; then
    echo "error: $sheet does not exist" >&2
    exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
soffice --headless "-env:UserInstallation=file://$work/profile" --convert-to pdf --outdir "$work" "$sheet" >/dev/null
pdf="$work/$(basename "${sheet%.*}").pdf"
pdftoppm -png -r "$dpi" -f 1 -l 1 -singlefile "$pdf" "$work/page"
mkdir -p "$(dirname "$out")"
mv "$work/page.png" "$out"
echo "wrote $out"
