"""The review app's page: one HTML shell, its script and its style sheet, all served by the app itself.

The script (app.js) builds the queue and each document from the JSON API, setting every text through
`textContent`; the one piece of markup it inserts is a document's text as `extractor.views.review.highlight`
wrote it, escaped on the server. The Content-Security-Policy lets only the app's own script and style sheet
load, and the script talk only to the app (`connect-src 'self'`): no request leaves the machine."""

from __future__ import annotations

import html
from importlib import resources

from extractor.views.review import _CSS as REVIEW_CSS

_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
           "base-uri 'none'; form-action 'none'")
CSP = f"{_POLICY}; frame-ancestors 'none'"  # the header; a <meta> policy cannot say frame-ancestors


def asset(name: str) -> bytes:
    """app.js, or app.css after the review page's own style (the same marks, badges and text)."""
    data = resources.files(__package__).joinpath(name).read_bytes()
    if name == "app.css":
        return REVIEW_CSS.encode("utf-8") + data
    return data


def shell(schema: str) -> str:
    """The page before its script runs: a title, and a note for a browser without JavaScript."""
    name = html.escape(schema, quote=True)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        f"<title>extractor review: {name}</title>",
        '<link rel="stylesheet" href="/app.css">',
        f'<script src="/app.js" defer></script></head><body data-schema="{name}">',
        '<main id="app"><h1>Review: ' + name + "</h1>",
        "<noscript><p class=\"why\">The review app needs JavaScript; `extractor review` without --serve writes a "
        "page that does not.</p></noscript>",
        "</main></body></html>",
        "",
    ])
