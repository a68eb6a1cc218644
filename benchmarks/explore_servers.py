"""Which web server the explorer uses, by measurement: the standard library's http.server, Starlette on uvicorn, and
gradio. For each: what it adds to an install, the time to import it in a fresh process, and (for the two that serve a
plain JSON route) the latency of a request that carries a page of 64 small PNGs (about 60 KB of JSON), keep-alive.

    python benchmarks/explore_servers.py [--requests 300]

It installs Starlette/uvicorn and gradio into temporary folders with pip (so it needs the package index once).
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PAYLOAD = 'json.dumps({"images": [{"src": "data:image/png;base64," + "A" * 900, "command": "gancli sample"} for _ in range(64)]}).encode()'
SERVERS = {
    "stdlib": f"""
        import json, sys
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        BODY = {PAYLOAD}
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = sys.argv[2] == "nodelay"
            def do_GET(self):
                self.send_response(200); self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(BODY))); self.end_headers(); self.wfile.write(BODY)
            def log_message(self, *a): pass
        ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """,
    "starlette": f"""
        import json, sys, uvicorn
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route
        BODY = {PAYLOAD}
        async def page(request): return Response(BODY, media_type="application/json")
        uvicorn.run(Starlette(routes=[Route("/", page)]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """,
}
PACKAGES = {"stdlib": [], "starlette": ["starlette", "uvicorn"], "gradio": ["gradio"]}
IMPORTS = {"stdlib": "import http.server", "starlette": "import uvicorn, starlette.applications", "gradio": "import gradio"}


def install(packages: list[str], root: Path) -> tuple[Path | None, int]:
    if not packages:
        return None, 0
    target = root / "_".join(packages)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), *packages], check=True)
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    return target, size


def import_seconds(statement: str, target: Path | None) -> float:
    env = dict(os.environ, PYTHONPATH=str(target) if target else "", GRADIO_ANALYTICS_ENABLED="False")
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def latency(name: str, target: Path | None, requests: int) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(target) if target else "")
    server = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SERVERS[name.split()[0]]), str(port), name.split()[-1]], env=env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        connection = http.client.HTTPConnection("127.0.0.1", port)
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            connection.request("GET", "/")
            connection.getresponse().read()
            times.append(time.perf_counter() - started)
        return statistics.median(times)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gancli-servers-"))
    print("| server | adds to the install | import, fresh process | request of ~60 KB JSON (median) |")
    print("| --- | ---: | ---: | ---: |")
    for name, packages in PACKAGES.items():
        target, size = install(packages, root)
        seconds = import_seconds(IMPORTS[name], target)
        variants = [f"{name} nodelay", f"{name} nagle"] if name == "stdlib" else [name]
        for variant in variants:  # http.server keeps Nagle's algorithm on unless told: keep-alive then waits on delayed ACKs
            served = f"{latency(variant, target, args.requests) * 1000:.2f} ms" if name in SERVERS else "(no plain route: not measured)"
            shown = {"stdlib nodelay": "stdlib (http.server, TCP_NODELAY as the explorer sets it)", "stdlib nagle": "stdlib (http.server as it comes)"}
            listed = ", ".join(packages)
            print(f"| {shown.get(variant, f'{name} ({listed})')} | {size / 2**20:.1f} MB | {seconds * 1000:.0f} ms | {served} |")


if __name__ == "__main__":
    main()
