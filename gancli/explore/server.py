"""The explorer's web server: the standard library's threading HTTP server, a page and its two assets, and a JSON
API over the Gallery. It serves nothing else: a path it does not know is a 404, whatever it spells.

The standard library was chosen by measurement over Starlette/uvicorn and gradio (docs/explore.md): no install,
the fastest start, and a request costs far less than the image it carries.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from gancli.errors import GancliError, UsageError
from gancli.explore.gallery import Gallery, Picture

MAX_URL = 4096  # bytes of a request target; more is a 414
MAX_FIELDS = 16
GENERATING = 4  # requests that make images at once; the others wait their turn (memory stays bounded)
ASSETS = {"/": ("index.html", "text/html; charset=utf-8"), "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/static/style.css": ("style.css", "text/css; charset=utf-8")}  # fmt: skip
# No scripts, styles, images or connections from anywhere else; no framing by other pages.
POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Explorer:
    """A running explorer: bound at construction (so `url` is known), serving after serve_forever()."""

    def __init__(self, gallery: Gallery, host: str = "127.0.0.1", port: int = 0):
        self.gallery = gallery
        self._busy = threading.BoundedSemaphore(GENERATING)
        handler = type("Handler", (_Handler,), {"explorer": self})
        server_class = _Server6 if ":" in host else _Server
        try:
            self.server = server_class((host, port), handler)
        except OSError as error:
            raise GancliError(f"Cannot listen on {host}:{port} ({error.strerror or error}); choose another --port, or 0 for a free one.") from None
        bound_host, bound_port = self.server.server_address[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}/"

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the API -----------------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str]) -> dict:
        """The JSON answer to an API request; UsageError for a bad one."""
        q = _Query(query)
        g = self.gallery
        if path == "/api/runs":
            return {"runs": g.describe(), "upscaler": g.default_upscaler}
        with self._busy:
            if path == "/api/images":
                pictures = g.images(q.int("run"), q.seeds("seeds"), q.int("label", None), q.float("truncation", None), q.int("upscaler", None))
            elif path == "/api/walk":
                pictures = g.walk(q.int("run"), q.seeds("seeds"), q.int("frames", 24), q.choice("method", ("slerp", "lerp"), "slerp"),
                                  q.int("label", None), q.ints("labels"), q.float("truncation", None))  # fmt: skip
            elif path == "/api/mix":
                picture = g.mix(q.int("run"), q.int("seed"), q.int("mix"), q.int("layer", None), q.float("truncation", None))
                return {"images": [_picture(picture)], "layers": g.entries[q.int("run")].model.net.num_styles - 1}
            elif path == "/api/latents":
                pictures = g.projected(q.int("run"))
            elif path == "/api/variations":
                pictures = g.variations(q.int("run"), q.int("seed"), q.int("count", 8), q.int("distance", 2), q.int("label", None),
                                        q.float("truncation", None))  # fmt: skip
            else:
                raise LookupError(path)
        return {"images": [_picture(p) for p in pictures]}

    def image(self, query: dict[str, str]) -> Picture:
        """/image.png: one seed's PNG, the file itself (for links, curl and downloads)."""
        q = _Query(query)
        with self._busy:
            (picture,) = self.gallery.images(q.int("run"), [q.int("seed")], q.int("label", None), q.float("truncation", None), q.int("upscaler", None))
        return picture


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # a burst of clients waits in the listen queue instead of being refused


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    explorer: Explorer
    protocol_version = "HTTP/1.1"  # keep-alive: a page's requests share connections
    disable_nagle_algorithm = True  # headers and body go out at once: with Nagle, keep-alive waited 40 ms a request
    timeout = 30  # a client that sends nothing for this long is dropped
    server_version = "gancli-explore"
    sys_version = ""
    _body = True  # False for HEAD: headers only

    def do_GET(self) -> None:
        self._route(send_body=True)

    def do_HEAD(self) -> None:
        self._route(send_body=False)

    def _refuse(self) -> None:
        self.close_connection = True  # its body, unread, must not be taken for the next request
        self._send(405, b'{"error": "The explorer only answers GET requests."}', "application/json", extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def _route(self, send_body: bool) -> None:
        self._body = send_body
        if len(self.path) > MAX_URL:
            return self._error(414, f"The request is longer than {MAX_URL} bytes.")
        parts = urlsplit(self.path)
        try:
            fields = parse_qs(parts.query, keep_blank_values=False, strict_parsing=False, max_num_fields=MAX_FIELDS)
        except ValueError:
            return self._error(400, f"A request takes at most {MAX_FIELDS} fields.")
        if any(len(v) > 1 for v in fields.values()):
            return self._error(400, "Give each field once.")
        query = {k: v[0] for k, v in fields.items()}
        try:
            if parts.path in ASSETS:
                name, kind = ASSETS[parts.path]
                return self._send(200, resources.files("gancli.explore").joinpath("static", name).read_bytes(), kind, cache="no-cache")
            if parts.path == "/image.png":
                picture = self.explorer.image(query)
                return self._send(200, picture.png, "image/png", extra={"Content-Disposition": f'inline; filename="{picture.filename}"'})
            if parts.path.startswith("/api/"):
                return self._send(200, json.dumps(self.explorer.answer(parts.path, query)).encode(), "application/json")
            raise LookupError(parts.path)
        except LookupError:
            return self._error(404, "Not found: the explorer serves its page, its images and nothing else.")
        except UsageError as error:
            return self._error(400, str(error))
        except GancliError as error:
            return self._error(422, str(error))
        except Exception as error:  # a bug: say so on the page, keep serving
            traceback.print_exc()
            return self._error(500, f"This is a bug in gancli's explorer ({type(error).__name__}: {error}); the server's terminal shows the traceback.")

    def _error(self, status: int, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(), "application/json")

    def _send(self, status: int, body: bytes, kind: str, cache: str = "no-store", extra: dict | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Type": kind, "Content-Length": str(len(body)), "Cache-Control": cache, "Content-Security-Policy": POLICY,
                           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", **(extra or {})}.items():  # fmt: skip
            self.send_header(key, value)
        self.end_headers()
        if self._body:
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # quiet: the terminal shows the URL, and errors on the page
        pass


class _Query:
    """The fields of a request, read as the types the gallery takes; a bad one is a UsageError naming the field."""

    def __init__(self, fields: dict[str, str]):
        self.fields = fields

    def int(self, name: str, default=...):
        text = self.fields.get(name)
        if text is None or text == "":
            if default is ...:
                raise UsageError(f"The request needs '{name}'.")
            return default
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            raise UsageError(f"'{name}' must be a whole number from 0, not {text[:40]!r}.")
        return int(text)

    def float(self, name: str, default=None):
        text = self.fields.get(name)
        if text is None or text == "":
            return default
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"'{name}' must be a number, not {text[:40]!r}.") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise UsageError(f"'{name}' must be a finite number.")
        return value

    def ints(self, name: str) -> list[int] | None:
        text = self.fields.get(name)
        if not text:
            return None
        return [self.__class__({name: part}).int(name) for part in text.split(",")[:64]]

    def seeds(self, name: str) -> list[int]:
        from gancli.use.latent import parse_seeds

        return parse_seeds(self.fields.get(name, ""), name)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.fields.get(name, default)
        if value not in choices:
            raise UsageError(f"'{name}' is one of {', '.join(choices)}.")
        return value


def _picture(picture: Picture) -> dict:
    return {"src": "data:image/png;base64," + base64.b64encode(picture.png).decode(), "command": picture.command, "filename": picture.filename,
            "note": picture.note}  # fmt: skip
