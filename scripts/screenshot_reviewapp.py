"""Draw the review app's pictures in docs/ (docs/guides/evidence-review.md shows them): its queue and a document.

    python scripts/screenshot_reviewapp.py [--out-dir docs] [--keep DIR]

The 24 sample letters of inputs/ are answered by the fake server (extractor/testing/fakeserver.py) with
bench/labels/cover_letters.jsonl, a quarter of the copied values replaced by another letter's (a model that
makes things up); two letters are reviewed through the app's API; then headless Chromium (Debian's
/usr/bin/chromium, driven by Playwright: no browser download) opens the app's URL, shows the queue, opens a
letter that needs review by keyboard, goes to its made-up e-mail and types a correction that is not an
address, which the schema refuses. No network, no API key.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.config import RunConfig, build_config  # noqa: E402
from extractor.extraction import runner  # noqa: E402
from extractor.testing.fakeserver import FakeOpenAI, oracle_answers  # noqa: E402
from extractor.views.reviewapp import ReviewApp, ServeConfig, running  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
SIZE = {"width": 1360, "height": 860}


def night(root: Path) -> set[tuple[str, str]]:
    """The night's run over inputs/; returns the (doc_id, field) values the fake model made up."""
    labels = [json.loads(line) for line in (ROOT / "bench" / "labels" / "cover_letters.jsonl").open(encoding="utf-8")]
    answers, invented = oracle_answers(labels, 0.25, seed=3)
    server = FakeOpenAI(answers=answers)
    server.start()
    try:
        runner.run(build_config(dict(input_dir=ROOT / "inputs", schema="cover_letter", schemas_dir=ROOT / "schemas",
                                     output_dir=root / "out", base_url=server.base_url, api_key="sk-demo-0000",
                                     model="gpt-4o-mini"), env={}))
    finally:
        server.stop()
    return invented


def api(app: ReviewApp, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {app.token}", "Content-Type": "application/json"}
    request = urllib.request.Request(app.origin + path, method="POST" if body is not None else "GET",
                                     data=json.dumps(body).encode() if body is not None else None, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    parser.add_argument("--keep", type=Path, help="build the project here (default: a temporary folder)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        invented = night(root)
        settings = RunConfig(schema="cover_letter", schemas_dir=ROOT / "schemas", output_dir=root / "out",
                             reviewer="sam")
        with running(ServeConfig(settings=settings, port=0)) as app:
            queue = api(app, "/api/documents")["documents"]
            for item in [d for d in queue if not d["needs_review"]][-2:]:  # two letters checked already
                path = "/api/documents/" + urllib.parse.quote(item["doc_id"], safe="")
                api(app, path + "/labels", {"accept": [f["name"] for f in api(app, path)["fields"]]})
            queue = api(app, "/api/documents")["documents"]
            target = next(i for i, d in enumerate(queue) if (d["doc_id"], "email") in invented)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                try:
                    page = browser.new_page(viewport=SIZE)
                    page.goto(app.url)
                    page.wait_for_selector("#queue tbody tr")
                    for _ in range(target):
                        page.keyboard.press("j")
                    page.screenshot(path=str(args.out_dir / "review-app-queue.png"))
                    page.keyboard.press("Enter")
                    page.wait_for_selector("#doctext")
                    while page.locator(".field.current").get_attribute("data-name") != "email":
                        page.keyboard.press("j")
                    page.keyboard.press("e")
                    page.keyboard.press("Control+A")
                    page.keyboard.type("ask the recruiter")
                    page.keyboard.press("Enter")
                    page.wait_for_selector('.field[data-name="email"] .note.error')
                    page.screenshot(path=str(args.out_dir / "review-app-document.png"))
                finally:
                    browser.close()
    for name in ("review-app-queue.png", "review-app-document.png"):
        print(args.out_dir / name)


if __name__ == "__main__":
    main()
