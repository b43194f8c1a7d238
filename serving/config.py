"""The predictor's settings: command-line flags, each also readable from the environment.

``--model-uri`` is also ``FLEETDECK_MODEL_URI``, ``--max-batch-size`` is
``FLEETDECK_MAX_BATCH_SIZE``, and so on; a flag given on the command line wins.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from serving import __version__
from serving.envflags import EnvDefaultParser, non_negative_float, number, positive_int

RUNTIME_CHOICES = ("auto", "savedmodel", "tflite", "tflite-int8")
# The HTTP transports over the same handlers: aiohttp's own server (the default) and the lean
# httptools one (lowest per-request overhead); see serving.server.
HTTP_SERVER_CHOICES = ("aiohttp", "httptools")


@dataclass(frozen=True)
class PredictorConfig:
    model_uri: str
    model_name: str | None
    version: int | None  # None: the latest published version
    runtime: str
    host: str
    port: int
    max_batch_size: int
    batch_timeout_ms: float
    max_enqueued_batches: int
    max_body_bytes: int
    drain_seconds: float
    cache_dir: Path
    log_level: str
    http_server: str = "aiohttp"

    @property
    def batching(self) -> bool:
        """Micro-batching is on when requests may wait to be joined; otherwise each goes straight
        to the model (the latency path)."""
        return self.batch_timeout_ms > 0 and self.max_batch_size > 1


def _version(text: str) -> int | None:
    if text == "latest":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'latest', got {text!r}")
    return int(text)


def _port(text: str) -> int:
    value = int(number(text, int))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {text}")
    return value


def _http_server(text: str) -> str:
    # A type, not only choices: argparse checks choices on the command line but not on a
    # default, and the default may come from FLEETDECK_HTTP_SERVER.
    if text not in HTTP_SERVER_CHOICES:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(HTTP_SERVER_CHOICES)}, got {text!r}"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = EnvDefaultParser(
        prog="python -m serving",
        description="Serve one model version from a fleetdeck model store over HTTP "
        "(Open Inference Protocol V2 and TensorFlow Serving REST).",
    )
    parser.add_argument("--about", action="version", version=f"fleetdeck-predictor {__version__}")
    add = parser.add_env_option
    add(
        "--model-uri",
        required=True,
        help="store root (with --model-name), <root>/<model>, or <root>/<model>/<version>; "
        "a path, file:// or hdfs://namenode:webhdfs-port/path",
    )
    add("--model-name", default=None, help="model to serve from a store root; also the name served")
    add("--version", type=_version, default=None, help="version number or 'latest' (default)")
    add(
        "--runtime",
        choices=RUNTIME_CHOICES,
        default="auto",
        help="auto takes the manifest's default runtime",
    )
    add("--host", default="0.0.0.0", help="address to listen on")
    add("--port", type=_port, default=8080, help="port to listen on (0: any free port)")
    add(
        "--max-batch-size",
        type=positive_int,
        default=64,
        help="largest batch the model runs; bigger requests are split",
    )
    add(
        "--batch-timeout-ms",
        type=non_negative_float,
        default=0.0,
        help="how long a batch may wait to fill; 0 turns micro-batching off",
    )
    add(
        "--max-enqueued-batches",
        type=positive_int,
        default=16,
        help="batching queue bound, in batches of --max-batch-size; overflow gets 503",
    )
    add(
        "--max-body-bytes",
        type=positive_int,
        default=16 * 1024 * 1024,
        help="largest request body; bigger ones get 413",
    )
    add(
        "--drain-seconds",
        type=non_negative_float,
        default=5.0,
        help="after SIGTERM, keep serving (not ready) this long before closing",
    )
    add(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("TMPDIR", "/tmp")) / "fleetdeck-models",
        help="where fetched model versions are kept",
    )
    add(
        "--http-server",
        type=_http_server,
        choices=HTTP_SERVER_CHOICES,
        default="aiohttp",
        help="the HTTP server carrying the API: aiohttp (default) or httptools (leanest)",
    )
    add(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log verbosity",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> PredictorConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    return PredictorConfig(
        model_uri=args.model_uri,
        model_name=args.model_name,
        version=args.version,
        runtime=args.runtime,
        host=args.host,
        port=args.port,
        max_batch_size=args.max_batch_size,
        batch_timeout_ms=args.batch_timeout_ms,
        max_enqueued_batches=args.max_enqueued_batches,
        max_body_bytes=args.max_body_bytes,
        drain_seconds=args.drain_seconds,
        cache_dir=Path(args.cache_dir),
        log_level=args.log_level,
        http_server=args.http_server,
    )
