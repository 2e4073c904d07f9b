"""The prediction Lambda's cold start and package size, and what AWS Lambda Powertools would add.

A cold start is measured as Lambda pays it: a fresh interpreter with the asset root first on the
path imports ``prediction.handler`` and serves one request, which creates the boto3 client and
calls the endpoint (here a loopback server answering a verdict). Each of ``--runs`` interpreters
is timed from the inside, so interpreter start-up (the same with or without any library) is left
out. With ``--powertools DIR`` (a folder laid out as the Powertools layer's ``python/``, e.g. from
``pip install --target DIR aws-lambda-powertools``) the same interpreters first import what the
handler would use from it (Logger, Metrics, the REST resolver), and the bench reports that cost
and the layer's size beside the asset's.

    python bench/lambda_cold_start.py [--runs 15] [--powertools /tmp/powertools]
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from contract.packaging import build_lambda_asset

POWERTOOLS_IMPORTS = (
    "from aws_lambda_powertools import Logger, Metrics\n"
    "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
)
COLD_START = """
import json, sys, time
started = time.perf_counter()
sys.path[:0] = [p for p in sys.argv[1:3] if p]
exec(sys.argv[3])
libraries = time.perf_counter()
import prediction.handler as entry
imported = time.perf_counter()
event = {"headers": {"Content-Type": "application/json"}, "body": '{"review": "Fine."}'}
response = entry.handler(event, None)
assert response["statusCode"] == 200, response
served = time.perf_counter()
print(json.dumps({"libraries_ms": (libraries - started) * 1e3,
                  "import_ms": (imported - libraries) * 1e3,
                  "first_request_ms": (served - imported) * 1e3}))
"""


class _Endpoint(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"sentiment": "positive", "score": 0.9}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def zipped_bytes(root: Path, exclude: tuple[str, ...]) -> tuple[int, int]:
    """(files, bytes) of ``root`` zipped as a deployment package, ``exclude`` left out."""
    buffer, files = io.BytesIO(), 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if path.is_dir() or any(
                fnmatch.fnmatch(part, pattern) for pattern in exclude for part in relative.parts
            ):
                continue
            archive.write(path, str(relative))
            files += 1
    return files, buffer.tell()


def cold_starts(
    asset: Path, runs: int, endpoint_url: str, powertools: Path | None
) -> list[dict[str, float]]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
        "ENDPOINT_NAME": "bench",
        "ALLOWED_ORIGIN": "*",
    }
    argv = [str(asset), str(powertools or ""), POWERTOOLS_IMPORTS if powertools else ""]
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-I", "-c", COLD_START, *argv],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
            cwd="/",
        )
        results.append(json.loads(done.stdout.splitlines()[-1]))
    return results


def medians(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in results), 1) for key in results[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--powertools", type=Path, help="the Powertools layer's python/ folder")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint_url = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as scratch:
        # The asset as the stacks build it: lambda_src/ with contract/ beside it.
        asset = build_lambda_asset(Path(scratch) / "lambda")
        files, size = zipped_bytes(asset, ("__pycache__", "*.pyc"))
        report = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "runs": args.runs,
            "asset": {"files": files, "zipped_bytes": size},
            "cold_start_ms": medians(cold_starts(asset, args.runs, endpoint_url, None)),
        }
        if args.powertools:
            files, size = zipped_bytes(args.powertools, ("__pycache__", "*.pyc"))
            runs = cold_starts(asset, args.runs, endpoint_url, args.powertools)
            report["powertools"] = {
                "layer": {"files": files, "zipped_bytes": size},
                "cold_start_ms": medians(runs),
            }
    server.shutdown()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
