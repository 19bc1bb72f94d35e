"""Page images for models that see (`pages = "text" | "images" | "both"`, issue 21 item 4): the pages read by OCR
go to the model as OpenAI image content parts, over HTTP to the fake server, which checks them as OpenAI does,
bills them by OpenAI's tile rule and "sees" what a known picture shows; the dry run and the cost count them."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from extractor.errors import ConfigError, DocumentError
from extractor.extraction import runner
from extractor.extraction.plan import plan
from extractor.llm.tokens import accepts_images, image_tokens

from .conftest import make_config, server_log, serving, write_docs

pytest.importorskip("rapidocr", reason="the OCR extra is not installed (pip install -e '.[ocr]')")

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LETTER = ["Dear hiring team,", "I am Anna Schmidt and I apply as Senior UX Designer.",
          "Write to me at anna.schmidt@web.de"]
SEES = "the picture of Anna Schmidt's letter"  # what the fake server reads in that page's image
ANSWER = {"applicant_name": "Anna Schmidt", "email": "anna.schmidt@web.de"}


def page(lines: list[str], size: int = 34) -> Any:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, size)
    image = Image.new("L", (1200, 200 + int(size * 1.6) * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((50, 60 + i * int(size * 1.6)), line, font=font, fill=0)
    return image


def png(image: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def user_parts(record: dict[str, Any]) -> list[dict[str, Any]]:
    user = next(m for m in record["messages"] if m["role"] == "user")
    return user["content"] if isinstance(user["content"], list) else [{"type": "text", "text": user["content"]}]


def _run(tmp_path: Path, pages: str, files: dict[str, bytes], **server: Any) -> tuple[Any, list[dict], list[dict]]:
    upright = png(page(LETTER))
    with serving(answers={SEES: ANSWER}, pictures={SEES: upright}, **server) as fake:
        config = make_config(tmp_path, fake, model="gpt-4o", pages=pages)
        write_docs(tmp_path / "in", files)
        summary = runner.run(config)
        log = [r for r in server_log(fake) if r.get("status") is not None]
    rows = pl.read_parquet(config.layout.results).to_dicts()
    return summary, rows, log


def test_pages_images_sends_a_turned_scan_upright_as_an_image_instead_of_its_ocr_text(tmp_path: Path) -> None:
    turned = png(page(LETTER).rotate(90, expand=True))
    summary, rows, log = _run(tmp_path, "images", {"scan.png": turned})
    assert summary.ok == 1, rows
    [row] = rows
    # The server answers the labels only where it saw the picture of the page: sent, and turned upright.
    assert (row["applicant_name"], row["email"]) == (ANSWER["applicant_name"], ANSWER["email"])
    [request] = [r for r in log if r["status"] == 200]
    parts = user_parts(request)
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 1 and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    text = " ".join(p["text"] for p in parts if p["type"] == "text")
    assert "anna.schmidt@web.de" not in text and "[page 1: sent as an image below]" in text
    assert request["seen"] == [SEES]
    # Metered like any tokens: the row's prompt tokens are what the server billed, the image's among them.
    assert request["image_tokens"] > 0 and row["prompt_tokens"] == request["prompt_tokens"]
    assert row["cost_usd"] > 0
    # The evidence still comes from the OCR text, with the page and the line's box.
    evidence = pl.read_parquet(tmp_path / "out" / "cover_letter" / "evidence.parquet").to_dicts()
    email = next(e for e in evidence if e["field"] == "email")
    assert email["status"] != "not_found" and email["page"] == 1 and email["bbox"] is not None


def test_pages_text_sends_no_image_and_both_sends_the_text_and_the_image(tmp_path: Path) -> None:
    scan = {"scan.png": png(page(LETTER))}
    _, rows, log = _run(tmp_path / "text", "text", scan)
    assert rows[0]["applicant_name"] != ANSWER["applicant_name"]  # the picture was never shown
    assert all(isinstance(next(m for m in r["messages"] if m["role"] == "user")["content"], str) for r in log)
    summary, rows, log = _run(tmp_path / "both", "both", scan)
    assert summary.ok == 1 and rows[0]["applicant_name"] == ANSWER["applicant_name"]
    parts = user_parts(next(r for r in log if r["status"] == 200))
    text = " ".join(p["text"] for p in parts if p["type"] == "text")
    assert "anna.schmidt@web.de" in text and sum(p["type"] == "image_url" for p in parts) == 1


def test_a_text_layer_document_is_sent_as_text_and_keeps_its_key_whatever_pages_says(tmp_path: Path) -> None:
    summary, _, log = _run(tmp_path, "images", {"letter.txt": b"Dear team, I am Anna Schmidt."})
    assert summary.ok == 1
    assert all(p["type"] == "text" for r in log for p in user_parts(r))
    with serving() as fake:
        text = make_config(tmp_path, fake, model="gpt-4o")
        images = make_config(tmp_path, fake, model="gpt-4o", pages="images")
    assert text.document_key("a" * 64, "v1", sampled=False) == images.document_key("a" * 64, "v1", sampled=False)
    assert text.document_key("a" * 64, "v1", sampled=False, ocr="rapidocr 3") != images.document_key(
        "a" * 64, "v1", sampled=False, ocr="rapidocr 3")


def test_the_dry_run_estimates_the_image_tokens_the_server_then_bills(tmp_path: Path) -> None:
    upright = png(page(LETTER))
    write_docs(tmp_path / "in", {"scan.png": upright})
    with serving(answers={SEES: ANSWER}, pictures={SEES: upright}) as fake:
        config = make_config(tmp_path, fake, model="gpt-4o", pages="images")
        planned = plan(config)
        assert server_log(fake) == []  # a dry run sends nothing
        runner.run(config)
        billed = next(r for r in server_log(fake) if r.get("status") == 200)
    [doc] = planned.to_send
    assert doc.images == 1 and doc.image_tokens == billed["image_tokens"]  # the same rule: gpt-4o's tiles
    # The estimate is the text at 4 characters a token plus the image by the rule (the uncalibrated dry run leaves
    # the tool schema out, as it does without images: the server billed it too).
    text_chars = doc.prompt_chars - int(doc.image_tokens / 0.25)
    assert abs(doc.prompt_tokens - (doc.image_tokens + text_chars / 4)) <= 2, doc
    assert doc.image_tokens < doc.prompt_tokens <= billed["prompt_tokens"]
    assert planned.images == (1, doc.image_tokens) and planned.cost_usd and planned.cost_usd > 0
    from rich.console import Console

    from extractor.views.terminal import print_plan

    console = Console(record=True, width=200)
    print_plan(planned, console)
    assert f"page images: 1 page(s) sent as images, ~{doc.image_tokens:,} of the prompt tokens" in console.export_text()


def test_a_text_only_model_given_images_fails_with_a_message_naming_the_setting(tmp_path: Path) -> None:
    write_docs(tmp_path / "in", {"scan.png": png(page(LETTER))})
    with serving() as fake:
        # Known text-only: refused before anything is read or sent.
        with pytest.raises(ConfigError, match="pages = images") as refused:
            runner.run(make_config(tmp_path, fake, model="gpt-3.5-turbo", pages="images"))
        assert "pages = text" in str(refused.value)
        with pytest.raises(ConfigError, match="vision = false"):
            runner.run(make_config(tmp_path, fake, model="my-local-model", pages="images", vision=False))
        assert server_log(fake) == []
    # Unknown to the table and text-only on the server: the server's 400 becomes a message naming the setting.
    summary, rows, _ = _run(tmp_path / "unknown", "images", {"scan.png": png(page(LETTER))}, vision=False)
    [row] = rows
    assert summary.failed == 1 and row["error_type"] == "ImagesRefused"
    assert "setting pages" in row["error_message"] and "pages = text" in row["error_message"]
    with pytest.raises(ConfigError, match="embedded model reads text only"):
        make_config(tmp_path, fake, model=None, base_url=None, api_key=None, pages="images")
    with pytest.raises(ConfigError, match="pages must be one of text, images, both"):
        make_config(tmp_path, fake, pages="pictures")


def test_the_fake_server_checks_image_parts_as_openai_does() -> None:
    good = base64.b64encode(png(page(["x"]))).decode()
    cases = {
        "data:image/png;base64," + good: 200,
        "data:image/jpeg;base64," + good: 400,  # PNG bytes said to be a JPEG
        "data:image/png;base64,%%%notbase64": 400,
        "https://example.com/page.png": 400,  # nothing is fetched
    }
    with serving() as fake:
        for url, status in cases.items():
            body = {"model": "gpt-4o", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "<document>\n\n</document>"},
                {"type": "image_url", "image_url": {"url": url}}]}]}
            request = urllib.request.Request(fake.base_url + "/chat/completions", data=json.dumps(body).encode(),
                                             headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(request) as response:
                    got = response.status
                    usage = json.loads(response.read())["usage"]
                    # 1200 x 254 px: 3 tiles (85 + 3 x 170), and the text's few tokens; not its base64 characters
                    assert 595 < usage["prompt_tokens"] < 595 + 40
            except urllib.error.HTTPError as exc:
                got = exc.code
            assert got == status, url[:40]


def test_image_tokens_follow_openais_published_examples() -> None:
    assert image_tokens("gpt-4o", 1024, 1024) == 765  # 4 tiles
    assert image_tokens("gpt-4o", 2048, 4096) == 1105  # 768 x 1536: 6 tiles
    assert image_tokens("gpt-4o", 4096, 8192, "low") == 85
    assert image_tokens("gpt-4o-mini", 1024, 1024) == 2833 + 4 * 5667
    assert image_tokens("gpt-4.1-mini", 1024, 1024) == 1659  # 1024 patches x 1.62
    assert image_tokens("gpt-4.1-mini", 1800, 2400) == 2353  # scaled to 1056 x 1408: 1452 patches x 1.62
    assert image_tokens("ft:gpt-4o-2024-08-06:org::x", 1024, 1024) == 765
    assert (accepts_images("gpt-4o-mini"), accepts_images("gpt-3.5-turbo"), accepts_images("Qwen2.5-VL")) == (
        True, False, None)


def test_a_page_image_is_bounded_and_a_bomb_is_not_decoded(tmp_path: Path) -> None:
    from extractor.documents import MODEL_SIDE, page_picture

    from .test_ocr import bomb_png

    big = page(LETTER).resize((5000, 1500))
    jpeg, width, height = page_picture(png(big), ".png", 1, 0, MODEL_SIDE)
    assert max(width, height) == MODEL_SIDE and jpeg[:2] == b"\xff\xd8"
    with pytest.raises(DocumentError, match="decompression-bomb"):
        page_picture(bomb_png(), ".png", 1)


def test_pages_and_vision_can_vary_in_an_experiment() -> None:
    from extractor.ladder.experiment import parse_variant

    assert parse_variant("pages=images,vision=true") == {"pages": "images", "vision": True}
    with pytest.raises(ConfigError, match="true or false"):
        parse_variant("vision=maybe")
