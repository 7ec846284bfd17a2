"""The web process's peak memory for 100 MP uploads, through a real server process.

    .venv/bin/python bench/upload_memory.py [--port 8765] [--concurrent 1 3] [--side 10000]

Starts `manage.py runserver --noreload` (one process, a thread per request, the embedded
defaults in a temporary folder: SQLite, local media, no worker), signs in as the demo
merchant over the API, and uploads PNGs of 10,000 × 10,000 px (inside the 100 MP cap, about
300 KB each: flat colour compresses well). For each round it resets the process's peak RSS
(/proc/<pid>/clear_refs), sends N uploads at once, and reads VmHWM from /proc/<pid>/status.
Prints one line per round: idle RSS, peak RSS, peak above idle, whether that is within the
target (≤ 300 MB above idle, issue 14), and each answer's HTTP status and photo status. A photo
over VITRINE_UPLOAD_INLINE_MAX_PIXELS (12.5 MP by default) is accepted on its header and answers
201 "checking": its full decode is a cpu worker's job, and no worker runs here, so this measures
the web process alone."""
from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = 300


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_100mp(marker: int, side: int = 10_000, noise: bool = False) -> bytes:
    """A valid RGB PNG of side × side px, grey with one pixel per `marker` (distinct bytes,
    so no upload is a duplicate of another); with `noise`, random pixels instead (the worst
    case: nothing compresses, so the file and the working copy are as large as they get)."""
    if noise:
        compressor = zlib.compressobj(1)
        data = b"".join(compressor.compress(b"\x00" + os.urandom(side * 3)) for _ in range(side)) + compressor.flush()
        header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")

    compressor = zlib.compressobj(9)
    plain = b"\x00" + b"\x80" * (side * 3)
    marked = bytearray(plain)
    marked[1 + 3 * marker] = 0x10
    parts = [compressor.compress(bytes(marked) if y == 0 else plain) for y in range(side)]
    data = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(url: str, body: bytes, content_type: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--concurrent", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--noise", action="store_true", help="random pixels (incompressible) instead of flat grey")
    parser.add_argument(
        "--side", type=int, default=10_000,
        help="the PNGs' width and height (default 10,000: 100 MP; 3,535 is about the largest decoded in the request by default)",
    )
    args = parser.parse_args()

    var = tempfile.mkdtemp(prefix="vitrine-upload-memory-")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "VITRINE_VAR_DIR": var, "VITRINE_DEMO": "true"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)  # the embedded defaults: nothing shared with anyone else
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    server = subprocess.Popen(
        [python, "manage.py", "runserver", f"127.0.0.1:{args.port}", "--noreload"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", args.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        code, answer = post(f"{base}/api/v1/auth/token/", json.dumps({"email": "merchant@demo.vitrine", "password": "vitrine-demo"}).encode(), "application/json")
        if code != 200 and code != 201:
            raise SystemExit(f"could not sign in: {code} {answer}")
        token = answer["token"]
        marker = 0
        print(f"{'uploads at once':>15} | {'idle RSS':>9} | {'peak RSS':>9} | {'above idle':>10} | within {TARGET_MB} MB")
        for n in args.concurrent:
            files = []
            for _ in range(n):
                marker += 1
                files.append(multipart(png_100mp(marker, args.side, args.noise), f"big-{marker}.png"))
            time.sleep(1)
            idle = status_kb(server.pid, "VmRSS")
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            results: list[str] = []

            def send(f) -> None:
                code, answer = post(f"{base}/api/v1/photos/", f[0], f[1], token)
                results.append(f"{code} {answer.get('status', answer)}")

            threads = [threading.Thread(target=send, args=(f,)) for f in files]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            peak = status_kb(server.pid, "VmHWM")
            above = (peak - idle) / 1024
            print(f"{n:>15} | {idle / 1024:>6.0f} MB | {peak / 1024:>6.0f} MB | {above:>7.0f} MB | {'yes' if above <= TARGET_MB else 'no'}  (answers: {sorted(results)})")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
