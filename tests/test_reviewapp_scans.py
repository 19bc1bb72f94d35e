"""The review app (`extractor review --serve`) shows a page read by OCR as its image with each value's box (issue 21,
item 3 in the served app): the API gives the boxes and serves the page image behind the token; in Chromium the
image loads under the app's policy (img-src 'self') and the boxes lie on it, the current field's marked."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extractor.extraction import runner
from extractor.views.reviewapp import ReviewApp, ServeConfig, running

from .conftest import make_config, serving, settings, write_docs
from .test_page_images import LETTER, page, png
from .test_reviewapp import CHROMIUM, _browser, call

pytest.importorskip("rapidocr", reason="the OCR extra is not installed (pip install -e '.[ocr]')")

ANSWER = {"applicant_name": "Anna Schmidt", "email": "anna.schmidt@web.de", "desired_role": "Senior UX Designer"}
SCAN = "2026-11/scan one.png"  # a folder and a space: URL-encoded in the API's paths


@pytest.fixture
def app(tmp_path: Path) -> Iterator[ReviewApp]:
    write_docs(tmp_path / "in", {SCAN: png(page(LETTER)), "letter.txt": "Dear team, I am Li Wei."})
    with serving(answers={"Anna Schmidt": ANSWER}) as server:
        summary = runner.run(make_config(tmp_path, server, model="gpt-4o"))
    assert summary.ok == 2
    with running(ServeConfig(settings=settings(tmp_path / "out"), port=0)) as served:
        yield served


def _path(doc_id: str) -> str:
    return "/api/documents/" + urllib.parse.quote(doc_id, safe="")


def _image(app: ReviewApp, path: str) -> tuple[int, str, bytes]:
    """(status, content type, bytes) of a GET with the token, as the page's <img> sends it (its cookie)."""
    request = urllib.request.Request(app.origin + path, headers={"Cookie": f"{app.cookie}={app.token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_the_document_api_gives_each_ocr_pages_boxes_and_serves_its_image_behind_the_token(app: ReviewApp) -> None:
    doc = call(app, "GET", _path(SCAN)).body
    [scan] = doc["scans"]
    assert scan["page"] == 1 and scan["rotation"] == 0
    boxed = {b["field"] for b in scan["boxes"]}
    assert {"applicant_name", "email", "desired_role"} <= boxed
    for box in scan["boxes"]:
        x0, y0, x1, y1 = box["bbox"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    status, kind, jpeg = _image(app, _path(SCAN) + "/pages/1.jpg")
    assert (status, kind, jpeg[:2]) == (200, "image/jpeg", b"\xff\xd8")
    assert call(app, "GET", _path(SCAN) + "/pages/1.jpg", auth=None).status == 401
    assert _image(app, _path(SCAN) + "/pages/2.jpg")[0] == 404
    assert _image(app, _path(SCAN) + "/pages/x.jpg")[0] == 404
    assert _image(app, _path("letter.txt") + "/pages/1.jpg")[0] == 404  # a text file has no page image
    assert call(app, "GET", _path("letter.txt")).body["scans"] == []


@pytest.mark.integration
def test_the_page_image_and_its_boxes_in_chromium(app: ReviewApp, tmp_path: Path) -> None:
    sync_playwright = _browser()
    assert CHROMIUM.exists()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            view = browser.new_page(viewport={"width": 1400, "height": 1000})
            console: list[str] = []
            view.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            view.on("pageerror", lambda e: console.append(str(e)))
            view.goto(app.url)
            view.wait_for_selector("#queue tbody tr")
            view.goto(f"{app.origin}/#/doc/{urllib.parse.quote(SCAN, safe='')}")
            view.wait_for_selector("#scans figure.scan img")
            image = view.locator("#scans img").first
            image.evaluate("img => img.decode()")
            loaded = image.evaluate("img => img.complete && img.naturalWidth > 0")
            frame = image.bounding_box()
            boxes: list[Any] = [b.bounding_box() for b in view.locator("#scans .box").all()]
            focused = view.locator("#scans .box.focus").first.get_attribute("data-field")
            current = view.locator(".field.current").get_attribute("data-name")
            view.screenshot(path=str(tmp_path / "scan.png"))
        finally:
            browser.close()
    assert loaded, "the page image loads under the app's Content-Security-Policy"
    assert not console, console
    assert frame is not None and frame["width"] > 200 and len(boxes) >= 3
    for box in boxes:
        assert box is not None and box["width"] > 2 and box["height"] > 2
        assert frame["x"] - 1 <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1
        assert frame["y"] - 1 <= box["y"] and box["y"] + box["height"] <= frame["y"] + frame["height"] + 1
    assert focused is not None and focused.split(".")[0] == current
