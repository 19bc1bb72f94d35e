"""OCR engines on the scan set (not a test: prints measured figures).

Makes the scan set of the sample letters (bench/make_scans.py) and reads every file the way a run does
(`extractor.documents.load_document`: orientation, reading order, boxes), then prints per engine and variant:
seconds per page (wall clock, this process, one page at a time), character error rate against the letter's
text (Levenshtein distance over whitespace-normalized text / reference length), and the share of the
labeled copied values (`bench/labels/`) the evidence search finds in the OCR text, which is what extraction
needs. Tesseract (Debian's `tesseract-ocr`, through its CLI) is measured beside RapidOCR when installed.

    python bench/ocr.py [--letters 6] [--variants clean,pdf,mixed,turned,photo] [--engines rapidocr,tesseract]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import make_scans  # noqa: E402

from extractor.documents import SourceFile, load_document  # noqa: E402
from extractor.values.evidence import Grounder, derived_fields, leaves  # noqa: E402


def normalized(text: str) -> str:
    return " ".join(text.split())


def cer(reference: str, read: str) -> float:
    from rapidfuzz.distance import Levenshtein

    ref, hyp = normalized(reference), normalized(read)
    return Levenshtein.distance(ref, hyp) / max(1, len(ref))


def copied_found(label: dict[str, Any], text: str) -> tuple[int, int]:
    """(found, copied): the labeled values not derived by the schema that the evidence search finds in `text`."""
    from extractor.schemas import load_schema

    model = load_schema(ROOT / "schemas", "cover_letter").model
    derived = derived_fields(model)
    grounder = Grounder(text)
    found = copied = 0
    for leaf in leaves(model, {k: v for k, v in label.items() if k not in ("doc_id", "source", "pages")}):
        import re

        if re.sub(r"\[\d+\]", "", leaf.field) in derived or leaf.kind == "derived":
            continue
        copied += 1
        found += grounder.ground(leaf).status != "not_found"
    return found, copied


def tesseract(path: Path) -> tuple[str, int]:
    """Text of an image or PDF by the tesseract CLI (PDF pages rendered at 200 dpi first); (text, pages)."""
    from PIL import Image, ImageOps

    from extractor.documents.ocr import render_pdf_page

    with tempfile.TemporaryDirectory() as tmp:
        images: list[Path] = []
        if path.suffix == ".pdf":
            import pypdfium2 as pdfium

            pages = len(pdfium.PdfDocument(path.read_bytes()))
            for i in range(pages):
                images.append(Path(tmp) / f"{i}.png")
                render_pdf_page(path.read_bytes(), i).save(images[-1])
        else:
            images.append(Path(tmp) / "0.png")
            ImageOps.exif_transpose(Image.open(path)).save(images[-1])
        texts = []
        for image in images:
            # --psm 1: automatic page segmentation with orientation and script detection (turned pages)
            done = subprocess.run(["tesseract", str(image), "-", "-l", "eng+deu+fra", "--psm", "1"],
                                  capture_output=True, text=True, check=False)
            texts.append(done.stdout)
        return "\n\n".join(texts), len(images)


_CHILDREN = [0.0]


def _children_cpu() -> float:
    """CPU seconds of finished child processes (tesseract) since the last call."""
    usage = os.times()
    total = usage.children_user + usage.children_system
    spent, _CHILDREN[0] = total - _CHILDREN[0], total
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=6, help="the first N labeled letters (24: all)")
    parser.add_argument("--variants", default=",".join(make_scans.VARIANTS))
    parser.add_argument("--engines", default="rapidocr,tesseract")
    parser.add_argument("--keep", type=Path, default=None, help="write the scan set here and keep it")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e != "tesseract" or shutil.which("tesseract")]
    out = args.keep or Path(tempfile.mkdtemp(prefix="scans-"))
    labels = make_scans.make(out, args.letters, tuple(args.variants.split(",")))
    references = {label["source"]: make_scans.letter_text(label["source"]) for label in labels}
    print(f"{len(labels)} files from {args.letters} letters, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    table: dict[tuple[str, str], dict[str, list[float]]] = {}
    for engine in engines:
        for label in labels:
            path = out / label["doc_id"]
            variant = label["doc_id"].split("/")[0]
            started, cpu = time.perf_counter(), time.process_time()
            if engine == "rapidocr":
                doc = load_document(SourceFile(path, label["doc_id"]), max_chars=10**7)
                text = doc.text
                read_pages = sum(info.ocr for info in doc.page_info) or 1
            else:
                text, read_pages = tesseract(path)
            seconds = time.perf_counter() - started
            # CPU seconds of this process (all its threads) and of tesseract's: what a page costs whatever
            # else the machine runs; on 2 cores, wall seconds are about half of it when the machine is quiet.
            cpu_s = time.process_time() - cpu + (_children_cpu() if engine == "tesseract" else 0.0)
            found, copied = copied_found(label, text)
            cell = table.setdefault((engine, variant), {"s_page": [], "cpu_page": [], "cer": [], "found": [],
                                                        "copied": []})
            cell["s_page"].append(seconds / read_pages)
            cell["cpu_page"].append(cpu_s / read_pages)
            cell["cer"].append(cer(references[label["source"]], text))
            cell["found"].append(found)
            cell["copied"].append(copied)
            print(json.dumps({"engine": engine, "file": label["doc_id"], "s_page": round(seconds / read_pages, 2),
                              "cpu_s_page": round(cpu_s / read_pages, 2),
                              "cer": round(cell["cer"][-1], 4), "found": f"{found}/{copied}"}), flush=True)
    print("\n| engine | variant | files | wall s/page (median) | CPU s/page (median) | CER (mean) | copied values "
          "found |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (engine, variant), cell in table.items():
        share = sum(cell["found"]) / max(1, sum(cell["copied"]))
        print(f"| {engine} | {variant} | {len(cell['cer'])} | {statistics.median(cell['s_page']):.2f} | "
              f"{statistics.median(cell['cpu_page']):.2f} | "
              f"{statistics.fmean(cell['cer']):.2%} | {share:.1%} ({int(sum(cell['found']))}/"
              f"{int(sum(cell['copied']))}) |")
    if args.keep is None:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
