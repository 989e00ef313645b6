"""Load check of ``deepscope serve``: concurrent clients posting predictions.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_serve_load.py [--clients 20] [--seconds 60]
        [--model unet-nuclei-fluo] [--size 512] [--mode count] [--json FILE]

Starts the web app on a free loopback port (no job worker), then ``--clients`` threads each
post ``POST /api/predict`` (multipart upload of a ``--size``² crop of a DSB2018 validation
image, Predict Preview or Count) back to back for ``--seconds``. Prints the number of
requests, errors, throughput and the median / p95 / max latency. The server predicts one
image at a time (a lock: the CPU's cores serve one prediction), so latency grows with the
number of clients while nothing fails.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import tifffile

from deepscope.io import read_image

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT.parent / "shared" / "data" / "dsb2018" / "fluorescence" / "val" / "images"
SAMPLE = ROOT / "src" / "deepscope" / "samples" / "nuclei_fluo.tif"


def test_image(size: int) -> bytes:
    """A ``size``² TIFF: the largest validation image (or the shipped sample), tiled."""
    sources = sorted(IMAGES.glob("*.tif")) if IMAGES.is_dir() else [SAMPLE]
    image = max((read_image(p).data for p in sources), key=lambda a: a.size)
    image = image if image.ndim == 2 else image[..., 0]
    reps = (-(-size // image.shape[0]), -(-size // image.shape[1]))
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.tile(image, reps)[:size, :size])
    return buffer.getvalue()


def multipart(fields: dict[str, str], name: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: image/tiff\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def start_server(state: Path) -> tuple[str, object, threading.Thread]:
    import uvicorn

    from deepscope.app import ServerSettings, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(ServerSettings(port=port, state_dir=state, workers=False, device="cpu"))
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--model", default="unet-nuclei-fluo")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--mode", choices=("preview", "count"), default="count")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    body, content_type = multipart(
        {"model": args.model, "mode": args.mode}, "load.tif", test_image(args.size)
    )
    with tempfile.TemporaryDirectory() as state:
        url, server, thread = start_server(Path(state))
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        end = time.perf_counter() + args.seconds

        def client() -> None:
            while time.perf_counter() < end:
                request = urllib.request.Request(
                    f"{url}/api/predict", body, {"Content-Type": content_type}
                )
                t0 = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=600) as answer:
                        n = json.loads(answer.read())["n_objects"]
                    ok = n > 0
                except (urllib.error.URLError, OSError, KeyError, ValueError) as err:
                    ok, n = False, str(err)
                with lock:
                    (latencies if ok else errors).append(time.perf_counter() - t0 if ok else n)

        started = time.perf_counter()
        clients = [threading.Thread(target=client) for _ in range(args.clients)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        wall = time.perf_counter() - started
        server.should_exit = True
        thread.join(timeout=30)

    lat = np.array(latencies)
    result = {
        "clients": args.clients,
        "seconds": round(wall, 1),
        "model": args.model,
        "mode": args.mode,
        "image": f"{args.size}x{args.size}",
        "requests": len(latencies),
        "errors": len(errors),
        "throughput_per_s": round(len(latencies) / wall, 2),
        "median_s": round(float(np.median(lat)), 2) if lat.size else None,
        "p95_s": round(float(np.percentile(lat, 95)), 2) if lat.size else None,
        "max_s": round(float(lat.max()), 2) if lat.size else None,
    }
    for key, value in result.items():
        print(f"{key:>18}: {value}")
    if errors:
        print("first error:", errors[0])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
