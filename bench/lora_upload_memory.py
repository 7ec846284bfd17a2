"""The web process's peak memory for one large LoRA upload, through a real server process.

    .venv/bin/python bench/lora_upload_memory.py [--port 8766] [--mb 500] [--root DIR]

Writes a valid .safetensors file of about `--mb` MB (random float16 tensors in LoRA pairs,
written to a temporary file in 8 MB pieces, so this process never holds it either), starts
`manage.py runserver --noreload` (one process, the embedded defaults in a temporary folder:
SQLite, local media, no worker), signs in as the demo brand manager over the API and sends the
file to POST /api/v1/brand-kits/<default kit>/loras/, streamed from disk. Before sending it
resets the server's peak RSS (/proc/<pid>/clear_refs) and afterwards reads VmHWM from
/proc/<pid>/status. Prints idle RSS, peak RSS, peak above idle, the HTTP status, and whether
the stored file's sha256 is the one sent.

`--root` runs the server from another checkout of the project (e.g. an older commit unpacked
with `git archive`), to measure before/after with the same client."""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PIECE = 8 * 1024 * 1024


def write_safetensors(path: Path, total_mb: int) -> str:
    """A valid safetensors LoRA of about `total_mb` MB at `path`; returns its sha256."""
    rank, width = 64, 2048
    pair = 2 * rank * width * 2  # down (rank × width) and up (width × rank), float16
    layers = max(1, total_mb * 1024 * 1024 // pair)
    header, offset = {"__metadata__": {"format": "pt", "made_by": "bench/lora_upload_memory.py"}}, 0
    for layer in range(layers):
        for part, shape in (("lora_down", [rank, width]), ("lora_up", [width, rank])):
            size = shape[0] * shape[1] * 2
            header[f"unet.layer{layer}.{part}.weight"] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for piece in (struct.pack("<Q", len(text)), text):
            out.write(piece)
            digest.update(piece)
        left = offset
        while left:
            piece = os.urandom(min(_PIECE, left))
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def request(port: int, method: str, path: str, body=None, headers: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}
    finally:
        connection.close()


def multipart_stream(path: Path, fields: dict[str, str]):
    """(length, iterator of pieces, content type) of a multipart body whose file part is read
    from `path` in pieces."""
    boundary = uuid.uuid4().hex
    head = b"".join(
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
        for name, value in fields.items()
    ) + (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def pieces():
        yield head
        with path.open("rb") as source:
            while piece := source.read(_PIECE):
                yield piece
        yield tail

    return len(head) + path.stat().st_size + len(tail), pieces(), f"multipart/form-data; boundary={boundary}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--mb", type=int, default=500, help="the LoRA file's size in MB (default 500)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project checkout to serve (default: this one)")
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="vitrine-lora-memory-"))
    lora = var / "house-look.safetensors"
    sha = write_safetensors(lora, args.mb)
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "VITRINE_VAR_DIR": str(var), "VITRINE_DEMO": "true",
        "TMPDIR": str(var),  # Django spools the upload here; removed with the folder's files below
    }
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)  # the embedded defaults: nothing shared with anyone else
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=args.root, env=env, check=True)
    subprocess.run([python, "manage.py", "seed_demo"], cwd=args.root, env=env, check=True, stdout=subprocess.DEVNULL)
    server = subprocess.Popen(
        [python, "manage.py", "runserver", f"127.0.0.1:{args.port}", "--noreload"],
        cwd=args.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", args.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        login = json.dumps({"email": "brand@demo.vitrine", "password": "vitrine-demo"}).encode()
        code, answer = request(args.port, "POST", "/api/v1/auth/token/", login, {"Content-Type": "application/json"})
        if code not in (200, 201):
            raise SystemExit(f"could not sign in: {code} {answer}")
        auth = {"Authorization": f"Token {answer['token']}"}
        code, kits = request(args.port, "GET", "/api/v1/brand-kits/", headers=auth)
        kits = kits.get("results", kits) if isinstance(kits, dict) else kits
        kit = next((k for k in kits if k.get("is_default")), kits[0])
        length, body, content_type = multipart_stream(lora, {"name": "house-look", "weight": "0.8"})

        time.sleep(1)
        idle = status_kb(server.pid, "VmRSS")
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        started = time.monotonic()
        code, answer = request(
            args.port, "POST", f"/api/v1/brand-kits/{kit['id']}/loras/", body,
            {**auth, "Content-Type": content_type, "Content-Length": str(length)},
        )
        seconds = time.monotonic() - started
        peak = status_kb(server.pid, "VmHWM")
        stored = [lora_row.get("sha256") for lora_row in answer.get("loras", [])] if code == 201 else []
        print(f"LoRA upload of {length:,} bytes ({length / 1024**2:,.0f} MiB), server {args.root}")
        print(
            f"idle RSS {idle / 1024:,.0f} MB | peak RSS {peak / 1024:,.0f} MB | above idle {(peak - idle) / 1024:,.0f} MB"
            f" | HTTP {code} in {seconds:.1f} s | stored sha256 matches: {sha in stored}"
        )
        if code != 201:
            print(f"answer: {answer}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(var, ignore_errors=True)  # the LoRA, its spooled and stored copies


if __name__ == "__main__":
    main()
