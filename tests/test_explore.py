"""gancli explore's server: every image it shows is the file its command writes, byte for byte; it serves nothing else,
bounds what a request may ask, and keeps serving through bad runs and many clients."""

from __future__ import annotations

import base64
import io
import json
import shlex
import shutil
import socket
import threading
import urllib.request
from pathlib import Path
from urllib.error import HTTPError

import numpy as np
import pytest
from PIL import Image

import gancli

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1.0"


def get(server, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=60) as response:
            return response.status, response.read()
    except HTTPError as error:
        return error.code, error.read()


def ask(server, path: str) -> dict:
    status, body = get(server, path)
    assert status == 200, body
    return json.loads(body)


def png(picture: dict) -> bytes:
    return base64.b64decode(picture["src"].split(",", 1)[1])


def pixels(data: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))


def run_command(cli, picture: dict) -> bytes:
    """Run the command the page shows for an image, and read the file it names."""
    args = shlex.split(picture["command"])
    assert args[0] == "gancli"
    outdir = Path(args[args.index("--outdir") + 1])
    shutil.rmtree(outdir, ignore_errors=True)  # the commands never replace a file; each run starts afresh
    result = cli(*args[1:])
    assert result.code == 0, result.err
    return (outdir / picture["filename"]).read_bytes()


@pytest.fixture
def explorer(isolated):
    runs = [FIXTURES / f"{name}.safetensors" for name in ("dcgan-ema", "cdcgan", "stylegan", "srcnn")]
    with gancli.explorer(runs, device="cpu") as server:
        yield server


def test_the_page_and_its_assets_are_served_from_the_package(explorer):
    status, page = get(explorer, "/")
    assert status == 200 and b"/static/app.js" in page and b"http" not in page.replace(b'http-equiv', b'')  # nothing from elsewhere
    for asset in ("/static/app.js", "/static/style.css"):
        status, body = get(explorer, asset)
        assert status == 200 and b"https://" not in body and b"http://" not in body and b"@import" not in body
    runs = ask(explorer, "/api/runs")["runs"]
    assert [r["kind"] for r in runs] == ["generator", "generator", "generator", "upscaler"]
    assert runs[1]["classes"] == [str(i) for i in range(10)] and runs[2]["truncation"] and runs[2]["mixing"]


def test_every_image_is_the_file_its_command_writes(cli, explorer):
    for query in ("run=0&seeds=0-15", "run=1&seeds=3,40&label=7", "run=2&seeds=5&truncation=0.7", "run=0&seeds=9&upscaler=3"):
        for picture in ask(explorer, f"/api/images?{query}")["images"]:
            assert png(picture) == run_command(cli, picture), picture["command"]
    walk = ask(explorer, "/api/walk?run=1&seeds=1,2,3&frames=5&labels=3,8,1&method=lerp")["images"]
    assert len(walk) == 10
    for picture in walk[3:7]:
        assert png(picture) == run_command(cli, picture)
    for picture in ask(explorer, "/api/variations?run=0&seed=4&count=3&distance=2")["images"]:
        assert png(picture) == run_command(cli, picture) and "towards seed" in picture["note"]
    status, single = get(explorer, "/image.png?run=0&seed=12")
    assert cli("sample", "-c", FIXTURES / "dcgan-ema.safetensors", "--seeds", "12", "--outdir", "one").code == 0
    assert status == 200 and single == Path("one/seed0012.png").read_bytes()


def test_walks_and_mixes_are_the_cells_of_the_command_grids(cli, explorer):
    walk = ask(explorer, "/api/walk?run=2&seeds=1,2&frames=6&truncation=0.8")["images"]
    assert cli("interpolate", "1", "2", "-c", FIXTURES / "stylegan.safetensors", "--frames", "6", "--truncation", "0.8", "--out", "w.png").code == 0
    grid = pixels(Path("w.png").read_bytes())
    side = 32 + 2
    for i, picture in enumerate(walk):
        cell = grid[2 : 2 + 32, 2 + i * side : 2 + i * side + 32]
        assert np.array_equal(pixels(png(picture)), cell)
    (mixed,) = ask(explorer, "/api/mix?run=2&seed=1&mix=7&layer=2")["images"]
    args = shlex.split(mixed["command"])[1:]
    assert cli(*args).code == 0
    assert np.array_equal(pixels(png(mixed)), pixels(Path("mixing.png").read_bytes())[2 : 2 + 32, 2 + side : 2 + side + 32])


@pytest.mark.parametrize("path", ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/static/../../gancli/api.py", "/static/%2e%2e/app.js",
                                  "//etc/passwd", "/static/app.js%00.png", "/static//etc/passwd", "/static/app.js/..", "/etc/passwd",
                                  "/api/../static/app.js", "/static/index.html", "/fixtures/v0.1.0/dcgan-ema.safetensors"])  # fmt: skip
def test_no_request_reaches_a_file(explorer, path):
    status, body = get(explorer, path)
    assert status == 404 and b"root:" not in body and b"import" not in body


def test_raw_requests_with_nul_bytes_and_absolute_targets(explorer):
    host, port = explorer.server.server_address[:2]
    for target in (b"/static/app.js\x00", b"/\x00/etc/passwd", b"http://evil.example/etc/passwd", b"/api/images?run=0&seeds=0\x00-3", b"*"):
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b"".join(iter(lambda: s.recv(65536), b""))
        assert answer.split(b" ")[1] in (b"400", b"404"), (target, answer[:80])
        assert b"root:" not in answer


def test_symlinked_runs_and_run_numbers_reach_nothing_else(isolated):
    Path("runs/real/checkpoints").mkdir(parents=True)
    shutil.copy(FIXTURES / "dcgan-ema.safetensors", "runs/real/checkpoints/last.safetensors")
    Path("outside/checkpoints").mkdir(parents=True)
    shutil.copy(FIXTURES / "cdcgan.safetensors", "outside/checkpoints/last.safetensors")
    Path("runs/link").symlink_to(Path("outside").resolve())
    with gancli.explorer() as server:
        assert [r["name"] for r in ask(server, "/api/runs")["runs"]] == ["real"]
        for query in ("run=1", "run=-1", "run=../outside", "run=%2Fetc%2Fpasswd", "run=0x0", "run=99999999999999999999999"):
            status, body = get(server, f"/api/images?{query}&seeds=0")
            assert status == 400 and "error" in json.loads(body)


def test_oversized_requests_get_a_clear_4xx(explorer):
    for path, status, words in (("/api/images?run=0&seeds=0-256", 400, "1 to 256 images"),
                                ("/api/images?run=0&seeds=0-99999999999", 400, "more than"),
                                ("/api/walk?run=0&seeds=1,2,3&frames=121", 400, "at most 240"),
                                ("/api/walk?run=0&seeds=" + ",".join(map(str, range(17))) + "&frames=2", 400, "2 to 16 seeds"),
                                ("/api/variations?run=0&seed=1&count=100", 400, "1 to 32"),
                                ("/api/images?run=0&seeds=1&label=3", 400, "unconditional"),
                                ("/api/images?run=1&seeds=1&label=10", 400, "not one of the 10 classes"),
                                ("/api/images?run=0&seeds=1&truncation=0.5", 400, "style-based"),
                                ("/api/images?run=2&seeds=1&truncation=nan", 400, "finite"),
                                ("/api/images?run=3&seeds=1", 400, "not a generator"),
                                ("/api/images?" + "&".join(f"f{i}=1" for i in range(20)), 400, "at most 16 fields"),
                                ("/api/images?run=0&run=1&seeds=1", 400, "once"),
                                ("/api/images?run=0&seeds=" + "1," * 3000, 414, "longer than")):  # fmt: skip
        code, body = get(explorer, path)
        assert code == status and words in json.loads(body)["error"], (path, body)
    request = urllib.request.Request(explorer.url + "api/images", data=b"x" * 10, method="POST")
    with pytest.raises(HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405


def test_a_corrupt_missing_or_foreign_run_is_an_error_on_the_page(isolated):
    for name in ("good", "corrupt", "gone"):
        Path(f"runs/{name}/checkpoints").mkdir(parents=True)
        shutil.copy(FIXTURES / "dcgan-ema.safetensors", f"runs/{name}/checkpoints/last.safetensors")
    Path("runs/corrupt/checkpoints/last.safetensors").write_bytes(b"\x00" * 100)
    Path("runs/foreign/checkpoints").mkdir(parents=True)
    Path("runs/foreign/checkpoints/last.safetensors").write_bytes(b"{" + b"x" * 2000)
    with gancli.explorer() as server:
        runs = {r["name"]: r for r in ask(server, "/api/runs")["runs"]}
        assert runs["corrupt"]["error"] and runs["foreign"]["error"] and not runs["good"]["error"]
        shutil.rmtree("runs/gone")
        for name in ("corrupt", "foreign", "gone"):
            status, body = get(server, f"/api/images?run={runs[name]['id']}&seeds=0")
            assert status == 422 and "\n" not in json.loads(body)["error"], name
        assert len(ask(server, f"/api/images?run={runs['good']['id']}&seeds=0-3")["images"]) == 4  # still serving


@pytest.mark.slow  # 800 images on 50 connections
def test_fifty_concurrent_clients_leave_it_responsive_and_bounded(explorer):
    import resource

    ask(explorer, "/api/images?run=0&seeds=0")  # the model loaded
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answers: list[int] = []

    def client(k: int) -> None:
        answers.append(get(explorer, f"/api/images?run={k % 3}&seeds={1000 + 16 * k}-{1015 + 16 * k}")[0])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(50)]
    for t in threads:
        t.start()
    import time

    started = time.perf_counter()
    assert len(ask(explorer, "/api/runs")["runs"]) == 4  # answered while the 50 wait their turn
    answered_in = time.perf_counter() - started
    for t in threads:
        t.join(timeout=300)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert answers == [200] * 50 and answered_in < 5.0
    assert grown < 400, f"peak RSS grew by {grown:.0f} MB"


def test_gallery_cache_stays_within_its_bytes(isolated):
    from gancli.explore.gallery import Gallery

    gallery = Gallery(gancli.load, [FIXTURES / "dcgan-ema.safetensors"], cache_bytes=20_000)
    for start in range(0, 400, 40):
        gallery.images(0, list(range(start, start + 40)))
    assert 0 < gallery._cache_bytes <= 20_000 and len(gallery._cache) < 400


@pytest.mark.slow  # a real process and a real Ctrl-C
def test_the_command_prints_its_url_warns_off_loopback_and_stops_on_ctrl_c(isolated):
    import signal
    import subprocess
    import sys

    from gancli.explore.server import is_loopback

    assert all(map(is_loopback, ("127.0.0.1", "::1", "localhost", "127.8.9.10"))) and not any(map(is_loopback, ("0.0.0.0", "::", "10.0.0.2", "example.org")))
    for host, warned in (("0.0.0.0", True),):  # one process: the loopback default is what every other test serves on
        server = subprocess.Popen([sys.executable, "-m", "gancli", "explore", str(FIXTURES / "dcgan-ema.safetensors"), "--host", host,
                                   "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        line = server.stdout.readline()
        assert line.startswith("Serving 1 run(s) at http://") and "Ctrl-C" in line
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url.replace("0.0.0.0", "127.0.0.1") + "api/runs", timeout=30) as response:
            assert json.loads(response.read())["runs"][0]["arch"] == "dcgan"
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
        assert server.returncode == 0 and "Stopped." in out and "Traceback" not in err
        assert ("Warning: listening on 0.0.0.0" in err) == warned


def test_the_command_refuses_what_cannot_be_served(cli, isolated):
    result = cli("explore")
    assert result.code == 2 and "no 'runs' folder" in result.err and len(result.err.strip().splitlines()) == 1
    result = cli("explore", "nowhere/run")
    assert result.code == 2 and "'nowhere/run' does not exist" in result.err
    result = cli("explore", FIXTURES / "dcgan-ema.safetensors", "--upscaler", FIXTURES / "cdcgan.safetensors")
    assert result.code == 2 and "not an upscaler run" in result.err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = cli("explore", FIXTURES / "dcgan-ema.safetensors", "--port", taken.getsockname()[1])
    assert result.code == 1 and "Cannot listen on 127.0.0.1" in result.err and "--port" in result.err
