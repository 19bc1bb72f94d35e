"""Where a page's OCR time goes: text detection against recognition, per rapidocr setting (not a test: prints
measured figures).

Typesets the first N labeled letters' first pages at 200 dpi (bench/make_scans.py), scaled to the 2000 px the
pipeline reads, and calls rapidocr directly for each setting: once with detection only, once with detection and
recognition. Prints CPU seconds a page (this process, all its threads: steadier than wall time on a shared
machine) for detection and for the whole reading, wall seconds, and the character error rate of the lines as
the engine returns them (not put in reading order: `bench/ocr.py` measures the pipeline's own).

    python bench/ocr_profile.py [--letters 3] [--settings default,max1280,max960,max1280_t1,max1280_b12]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import make_scans  # noqa: E402

SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},  # rapidocr's own: detection keeps the short side at 736 px or more
    "max1280": {"Det.limit_type": "max", "Det.limit_side_len": 1280},  # the pipeline's (DETECT_SIDE)
    "max960": {"Det.limit_type": "max", "Det.limit_side_len": 960},
    "max1280_t1": {"Det.limit_type": "max", "Det.limit_side_len": 1280,
                   "EngineConfig.onnxruntime.intra_op_num_threads": 1},
    "max1280_b12": {"Det.limit_type": "max", "Det.limit_side_len": 1280, "Rec.rec_batch_num": 12},
}


def cer(reference: str, read: str) -> float:
    from rapidfuzz.distance import Levenshtein

    ref, hyp = " ".join(reference.split()), " ".join(read.split())
    return Levenshtein.distance(ref, hyp) / max(1, len(ref))


def main() -> None:
    import numpy as np
    from rapidocr import RapidOCR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=3)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    args = parser.parse_args()
    labels = [json.loads(line) for line in make_scans.LABELS.read_text(encoding="utf-8").splitlines()
              if line.strip()][: args.letters]
    pages = []
    for label in labels:
        lines = make_scans.lines_of(make_scans.letter_text(label["doc_id"]))
        page = make_scans.typeset(lines)[0].convert("RGB")
        page.thumbnail((2000, 2000))
        per_page = (make_scans.PAGE_H - 2 * make_scans.MARGIN) // round(round(11 / 72 * make_scans.DPI) * 1.4)
        pages.append(("\n".join(lines[:per_page]), np.asarray(page)))
    print(f"{len(pages)} pages, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print("| setting | detection CPU s/page | whole reading CPU s/page | recognition (the rest) | wall s/page | "
          "CER (lines unordered) | load |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.settings.split(","):
        engine = RapidOCR(params={"Global.log_level": "error", "Global.max_side_len": 2000, **SETTINGS[name]})
        engine(pages[0][1], use_det=True, use_cls=False, use_rec=False)  # loads the models, not counted
        detect = whole = wall = 0.0
        errors = []
        for text, image in pages:
            cpu = time.process_time()
            engine(image, use_det=True, use_cls=False, use_rec=False)
            detect += time.process_time() - cpu
            cpu, started = time.process_time(), time.perf_counter()
            result = engine(image, use_det=True, use_cls=False, use_rec=True)
            whole += time.process_time() - cpu
            wall += time.perf_counter() - started
            errors.append(cer(text, "\n".join(result.txts or ())))
        n = len(pages)
        print(f"| {name} | {detect / n:.2f} | {whole / n:.2f} | {(whole - detect) / n:.2f} | {wall / n:.2f} | "
              f"{statistics.fmean(errors):.3%} | {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
