"""Make the scan test set from the sample letters: what OCR is measured on (bench/ocr.py) and tested on
(tests/test_ocr.py). Deterministic (seeded); nothing is committed, it is made where it is needed.

Each labeled letter of `inputs/` (its text exactly as `extractor text` gives it) is typeset with Pillow on
US-letter pages at 200 dpi (DejaVu Serif 11 pt, wrapped at the margins) and written as:

- `clean`: a PNG of each page (one page; a longer letter continues as a 2-page TIFF instead);
- `clean300`: the same at 300 dpi (2550 x 3300 px a page; the OCR reads a page at most 2000 px on its long side,
  `extractor.documents.ocr.MAX_SIDE`, so it is scaled to about 180 dpi first);
- `pdf`: an image-only PDF, the letter split over two pages;
- `mixed`: a PDF whose first page has a text layer and whose second page is a scan of the rest;
- `turned`: the PNG turned 90, 180 or 270 degrees (by letter);
- `photo`: a phone-photo-like JPEG: grey paper, a 1.5-3 degree skew, sensor noise, a slight blur, JPEG 80, and
  on every second photo the pixels turned with an EXIF orientation tag saying how to show them.

    python bench/make_scans.py OUT [--letters N] [--variants clean,pdf,...]

writes OUT/<variant>/<letter>.<ext> and OUT/labels.jsonl (the letter's labels under each new doc_id).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELS = ROOT / "bench" / "labels" / "cover_letters.jsonl"
VARIANTS = ("clean", "clean300", "pdf", "mixed", "turned", "photo")
DPI = 200  # every variant but clean300
PAGE_W, PAGE_H = int(8.5 * DPI), int(11 * DPI)
MARGIN = DPI  # one inch
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")
WRAP = 78  # characters a line at 11 pt between one-inch margins


def letter_text(doc_id: str) -> str:
    """The text the model sees for a sample letter (`extractor text`)."""
    from extractor.documents import load_document
    from extractor.documents.model import SourceFile

    return load_document(SourceFile(ROOT / "inputs" / doc_id, doc_id), max_chars=10**7).text


def lines_of(text: str) -> list[str]:
    out: list[str] = []
    for paragraph in text.split("\n"):
        out.extend(textwrap.wrap(paragraph, WRAP) or [""])
    while out and not out[-1]:
        out.pop()
    return out


def typeset(lines: list[str], size_pt: float = 11.0, dpi: int = DPI) -> list[Any]:
    """Pages (greyscale Pillow images, US letter at `dpi`, one-inch margins) holding `lines` at `size_pt`, as
    many as they need."""
    from PIL import Image, ImageDraw, ImageFont

    width, height, margin = (PAGE_W, PAGE_H, MARGIN) if dpi == DPI else (int(8.5 * dpi), int(11 * dpi), dpi)
    font = ImageFont.truetype(str(FONT), round(size_pt / 72 * dpi))
    step = round(font.size * 1.4)
    per_page = (height - 2 * margin) // step
    pages = []
    for first in range(0, max(1, len(lines)), per_page):
        page = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(page)
        for i, line in enumerate(lines[first:first + per_page]):
            draw.text((margin, margin + i * step), line, font=font, fill=0)
        pages.append(page)
    return pages


def scan_file(pages: list[Any], dpi: int) -> tuple[str, bytes]:
    """(extension, bytes): a PNG of a one-page letter, a multi-page TIFF of a longer one, marked `dpi`."""
    buffer = io.BytesIO()
    if len(pages) == 1:
        pages[0].save(buffer, format="PNG", dpi=(dpi, dpi))
        return "png", buffer.getvalue()
    pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:], dpi=(dpi, dpi),
                  compression="tiff_deflate")
    return "tif", buffer.getvalue()


def halves(lines: list[str]) -> tuple[list[str], list[str]]:
    """The letter split at the paragraph break nearest its middle."""
    middle = len(lines) // 2
    breaks = [i for i, line in enumerate(lines) if not line] or [middle]
    cut = min(breaks, key=lambda i: abs(i - middle))
    return lines[:cut], lines[cut:]


def pdf_of(images: list[Any]) -> bytes:
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=DPI)
    return out.getvalue()


def mixed_pdf(first: list[str], second: Any) -> bytes:
    """Page 1 with a text layer (fpdf2, DejaVu), page 2 the scanned image `second`."""
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    pdf = FPDF(format="letter")
    pdf.add_font("DejaVu", fname=str(FONT))
    pdf.set_font("DejaVu", size=11)
    pdf.set_margins(25.4, 25.4)
    pdf.add_page()
    pdf.multi_cell(0, 5.5, "\n".join(first))
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(bytes(pdf.output()))))
    writer.append(PdfReader(io.BytesIO(pdf_of([second]))))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def photo(page: Any, rng: random.Random, exif_turn: bool) -> bytes:
    """A phone photo of a printed page: grey paper, skew, noise, blur; JPEG."""
    import numpy as np
    from PIL import Image, ImageFilter

    paper = rng.randint(190, 225)
    grey = Image.eval(page, lambda v: int(v * paper / 255))
    angle = rng.choice([-1, 1]) * rng.uniform(1.5, 3.0)
    skewed = grey.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=max(0, paper - 60))
    noisy = np.asarray(skewed, dtype=np.float32) + np.random.default_rng(rng.randint(0, 2**31)).normal(
        0, 9, (skewed.height, skewed.width))
    image = Image.fromarray(np.clip(noisy, 0, 255).astype("uint8")).filter(ImageFilter.GaussianBlur(0.8))
    image = image.convert("RGB")
    out = io.BytesIO()
    if exif_turn:  # stored turned a quarter clockwise; the tag (6: rotate 90 CW to show) says to turn it back
        image = image.rotate(90, expand=True)
        exif = Image.Exif()
        exif[0x0112] = 6
        image.save(out, format="JPEG", quality=80, exif=exif)
    else:
        image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def make(out: Path, letters: int | None = None, variants: tuple[str, ...] = VARIANTS,
         seed: int = 7) -> list[dict[str, Any]]:
    """Write the scan set under `out`; returns the labels, one per file (doc_id relative to `out`)."""
    labels = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = labels[:letters] if letters else labels
    rng = random.Random(seed)
    written: list[dict[str, Any]] = []
    for n, label in enumerate(labels):
        lines = lines_of(letter_text(label["doc_id"]))
        stem = Path(label["doc_id"]).stem
        pages = typeset(lines)
        files: dict[str, bytes] = {}
        for variant, dpi in (("clean", DPI), ("clean300", 300)):
            if variant in variants:
                name, data = scan_file(pages if dpi == DPI else typeset(lines, dpi=dpi), dpi)
                files[f"{variant}/{stem}.{name}"] = data
        first, second = halves(lines)
        if "pdf" in variants:
            files[f"pdf/{stem}.pdf"] = pdf_of(typeset(first) + typeset(second))
        if "mixed" in variants:
            files[f"mixed/{stem}.pdf"] = mixed_pdf(first, typeset(second)[0])
        if "turned" in variants:
            buffer = io.BytesIO()
            pages[0].rotate((90, 180, 270)[n % 3], expand=True).save(buffer, format="PNG")
            files[f"turned/{stem}.png"] = buffer.getvalue()
        if "photo" in variants:
            files[f"photo/{stem}.jpg"] = photo(pages[0], rng, exif_turn=n % 2 == 1)
        for name, data in files.items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append({**label, "doc_id": name, "source": label["doc_id"], "pages": len(pages)})
    (out / "labels.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in written),
                                      encoding="utf-8")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--letters", type=int, default=None, help="only the first N labeled letters")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    written = make(args.out, args.letters, tuple(args.variants.split(",")))
    print(f"{len(written)} files under {args.out}")


if __name__ == "__main__":
    main()
