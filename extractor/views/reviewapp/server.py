"""The review app's HTTP server (standard library, one thread a request) and its rules of access.

Every request needs the app's token: `?token=` once (the page is then answered with an HttpOnly,
SameSite=Strict cookie and redirected to itself without it), the cookie after that, or
`Authorization: Bearer TOKEN` from a script; else 401. A POST from another origin (its `Origin` is not
the app's own) is refused with 403, and so is one without `Origin` that relies on the cookie, as is a request
for another host name while the app listens on loopback (DNS rebinding). The token is compared in constant
time."""

from __future__ import annotations

import contextlib
import hmac
import http.server
import ipaddress
import json
import logging
import re
import secrets
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote

from extractor.config import RunConfig
from extractor.errors import ConfigError, ExtractorError
from extractor.views.reviewapp.data import BadRequest, ReviewDesk
from extractor.views.reviewapp.page import CSP, asset, shell

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_BODY = 1 << 20  # bytes of a POST body
ASSETS = {"/app.js": "text/javascript; charset=utf-8", "/app.css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class ServeConfig:
    """`extractor review --serve`: the invocation's settings (schema, folders, archive_dir, reviewer) and
    where to listen."""

    settings: RunConfig
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0: a free port
    token: str | None = None  # None: a fresh random one


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    app: ReviewApp


class _Server6(_Server):
    address_family = socket.AF_INET6


class ReviewApp:
    """The review app over one schema's outputs, listening once built (so its port and URL are known)."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.token = config.token or secrets.token_urlsafe(32)
        self.desk = ReviewDesk(config.settings)
        server_class = _Server6 if ":" in config.host else _Server
        try:
            self.httpd = server_class((config.host, config.port), _Handler)
        except OSError as exc:
            self.desk.close()
            raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc} (another "
                              "--port, or --port 0 for a free one)") from None
        self.httpd.app = self
        self.port: int = self.httpd.server_address[1]
        self.cookie = f"extractor_review_{self.port}"  # cookies do not tell ports apart: one per app
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        host = self.config.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL to open, with the token (as Jupyter prints it)."""
        return f"{self.origin}/?token={self.token}"

    @property
    def warning(self) -> str | None:
        """What to say when the app listens beyond this machine."""
        if is_loopback(self.config.host):
            return None
        return (f"listening on {self.config.host}, not only on this machine: anyone who can reach port {self.port} "
                "and has the token can read these documents and store labels, over plain HTTP (not encrypted)")

    def allowed_host(self, host: str | None) -> bool:
        """The Host a request names: on loopback, only this machine's own names (no DNS rebinding)."""
        if not is_loopback(self.config.host):
            return True
        return host in {f"{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]", self.config.host)}

    def token_ok(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.token.encode())

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> None:
        """Serve from a background thread (tests, scripts); `close()` stops it."""
        self._thread = threading.Thread(target=self.serve_forever, name="review-app", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()
        self.desk.close()

    def __enter__(self) -> ReviewApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def running(config: ServeConfig) -> Iterator[ReviewApp]:
    """The app serving from a background thread, closed however the block ends."""
    app = ReviewApp(config)
    app.start()
    try:
        yield app
    finally:
        app.close()


def serve(config: ServeConfig, announce: Callable[[ReviewApp], None]) -> None:
    """Serve until Ctrl-C or SIGTERM; `announce` is told the app once it listens (to print its URL)."""
    app = ReviewApp(config)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, stop)
    try:
        announce(app)
        app.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        app.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "extractor-review"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    @property
    def app(self) -> ReviewApp:
        return self.server.app

    # -- answers ----------------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False, default=str).encode("utf-8"),
                   "application/json; charset=utf-8")

    def _refuse(self, status: int, message: str, api: bool) -> None:
        if api:
            self._json(status, {"error": message})
        else:
            page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{status}</title></head>"
                    f"<body><p>{_escape(message)}</p></body></html>")
            self._send(status, page.encode("utf-8"), "text/html; charset=utf-8")

    # -- access -----------------------------------------------------------------------------------------

    def _split(self) -> tuple[list[str], dict[str, list[str]]]:
        """The path's segments, each URL-decoded (a doc_id may hold `/` as %2F), and the query."""
        path, _, query = self.path.partition("?")
        return [unquote(s) for s in path.split("/")[1:]], parse_qs(query)

    def _bearer(self) -> str | None:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None

    def _cookie(self) -> str | None:
        from http.cookies import CookieError, SimpleCookie

        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie") or "")
        except CookieError:
            return None
        morsel = jar.get(self.app.cookie)
        return morsel.value if morsel is not None else None

    def _allowed(self, query: dict[str, list[str]], api: bool) -> tuple[bool, str | None]:
        """Whether the request may go on, and how it proved it (`bearer`, `cookie`, `query`); refused
        requests are answered here."""
        app = self.app
        if not app.allowed_host(self.headers.get("Host")):
            self._refuse(403, "unexpected Host: open the app at the URL it printed", api)
            return False, None
        if self.command == "POST":
            origin = self.headers.get("Origin")
            if origin is not None and origin != f"http://{self.headers.get('Host')}":
                self._refuse(403, f"cross-origin request refused (Origin {origin})", api)
                return False, None
        given: list[tuple[str, str | None]] = [("bearer", self._bearer()), ("cookie", self._cookie()),
                                               ("query", next(iter(query.get("token") or []), None))]
        for how, candidate in given:
            if app.token_ok(candidate):
                if self.command == "POST" and how != "bearer" and self.headers.get("Origin") is None:
                    self._refuse(403, "a POST from the page must carry its Origin", api)
                    return False, None
                return True, how
        self._refuse(401, "this review app needs its token: open the URL it printed "
                          f"({app.origin}/?token=...), or send Authorization: Bearer TOKEN", api)
        return False, None

    # -- routes -----------------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        segments, query = self._split()
        api = segments[:1] == ["api"]
        ok, how = self._allowed(query, api)
        if not ok:
            return
        try:
            if segments == [""]:
                if how == "query":  # keep the token out of the address bar and history: a cookie from here on
                    cookie = f"{self.app.cookie}={self.app.token}; HttpOnly; SameSite=Strict; Path=/"
                    self._send(303, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})
                    return
                self._send(200, shell(self.app.desk.schema.name).encode("utf-8"), "text/html; charset=utf-8")
            elif segments == ["favicon.ico"]:
                self._send(204, b"", "image/x-icon")
            elif len(segments) == 1 and f"/{segments[0]}" in ASSETS:
                self._send(200, asset(segments[0]), ASSETS[f"/{segments[0]}"])
            elif segments == ["api", "documents"]:
                first = {k: v[0] or None for k, v in query.items() if k in ("field", "status", "evidence")}
                self._json(200, self.app.desk.queue(**first))
            elif (len(segments) == 5 and segments[:2] == ["api", "documents"] and segments[3] == "pages"
                  and re.fullmatch(r"[1-9][0-9]{0,4}\.jpg", segments[4])):
                jpeg = self.app.desk.page_image(segments[2], int(segments[4].removesuffix(".jpg")))
                if jpeg is None:
                    self._json(404, {"error": f"no page image {segments[4]!r} of {segments[2]!r}"})
                else:
                    self._send(200, jpeg, "image/jpeg")
            elif len(segments) == 3 and segments[:2] == ["api", "documents"]:
                doc = self.app.desk.document(segments[2])
                if doc is None:
                    self._json(404, {"error": f"no document {segments[2]!r} in the results"})
                else:
                    self._json(200, doc)
            else:
                self._refuse(404, "not found", api)
        except BadRequest as exc:
            self._json(400, {"error": str(exc)})
        except ExtractorError as exc:
            self._refuse(500, str(exc), api)
        except Exception as exc:  # answered, not a dropped connection; the next request reads afresh
            log.exception("review app: GET %s failed", self.path.partition("?")[0])
            self._refuse(500, f"{type(exc).__name__}: {exc}", api)

    def do_POST(self) -> None:
        segments, query = self._split()
        ok, _ = self._allowed(query, True)
        if not ok:
            return
        if not (len(segments) == 4 and segments[:2] == ["api", "documents"] and segments[3] == "labels"):
            self._json(404, {"error": "not found"})
            return
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self._json(415, {"error": "send JSON (Content-Type: application/json)"})
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self._json(413 if length > MAX_BODY else 400, {"error": f"a JSON body of at most {MAX_BODY} bytes"})
            self.close_connection = True
            return
        try:
            body = json.loads(self.rfile.read(length))
            outcome = self.app.desk.save(segments[2], body)
        except (ValueError, BadRequest) as exc:  # a json.JSONDecodeError is a ValueError
            self._json(400, {"error": str(exc)})
            return
        except ExtractorError as exc:
            self._json(500, {"error": str(exc)})
            return
        except Exception as exc:  # nothing was stored: a transaction that fails rolls back
            log.exception("review app: POST %s failed", self.path.partition("?")[0])
            self._json(500, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self._json(outcome.status, outcome.body)

    def _not_allowed(self) -> None:
        self._send(int(HTTPStatus.METHOD_NOT_ALLOWED), b"", "text/plain", {"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_PATCH = _not_allowed


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)
