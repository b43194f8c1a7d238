"""Every predictor flag is also an environment variable; the command line wins."""

from __future__ import annotations

import pytest

from serving.config import parse_args


def test_environment_variables_set_every_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "FLEETDECK_MODEL_URI": "hdfs://nn:9870/models",
        "FLEETDECK_MODEL_NAME": "photos",
        "FLEETDECK_VERSION": "3",
        "FLEETDECK_RUNTIME": "tflite",
        "FLEETDECK_HOST": "127.0.0.1",
        "FLEETDECK_PORT": "9000",
        "FLEETDECK_MAX_BATCH_SIZE": "32",
        "FLEETDECK_BATCH_TIMEOUT_MS": "2.5",
        "FLEETDECK_MAX_BODY_BYTES": "1024",
        "FLEETDECK_DRAIN_SECONDS": "10",
        "FLEETDECK_CACHE_DIR": "/var/cache/models",
    }
    for key, val in env.items():
        monkeypatch.setenv(key, val)
    config = parse_args([])
    assert (config.model_uri, config.model_name, config.version) == (
        "hdfs://nn:9870/models",
        "photos",
        3,
    )
    assert (config.runtime, config.host, config.port) == ("tflite", "127.0.0.1", 9000)
    assert (config.max_batch_size, config.batch_timeout_ms, config.batching) == (32, 2.5, True)
    assert (config.max_body_bytes, config.drain_seconds) == (1024, 10.0)
    assert str(config.cache_dir) == "/var/cache/models"
    assert parse_args(["--port", "7000"]).port == 7000


def test_batching_is_off_by_default_so_a_request_goes_straight_to_the_model() -> None:
    config = parse_args(["--model-uri", "/store/digits"])
    assert config.batching is False
    assert config.version is None


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--model-uri", "x", "--version", "0"], "positive integer or 'latest'"),
        (["--model-uri", "x", "--port", "http"], "not a number"),
        (["--model-uri", "x", "--max-batch-size", "0"], "at least 1"),
        (["--model-uri", "x", "--runtime", "onnx"], "invalid choice"),
        ([], "--model-uri"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert words in capsys.readouterr().err


def test_the_http_server_is_aiohttp_by_default_and_chosen_by_flag_or_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert parse_args(["--model-uri", "x"]).http_server == "aiohttp"
    assert parse_args(["--model-uri", "x", "--http-server", "httptools"]).http_server == "httptools"
    monkeypatch.setenv("FLEETDECK_HTTP_SERVER", "httptools")
    assert parse_args(["--model-uri", "x"]).http_server == "httptools"
    # the command line wins
    assert parse_args(["--model-uri", "x", "--http-server", "aiohttp"]).http_server == "aiohttp"


@pytest.mark.parametrize("where", ["flag", "environment"])
def test_an_unknown_http_server_exits_2_naming_the_choices(
    where: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--model-uri", "x"]
    if where == "flag":
        argv += ["--http-server", "nginx"]
    else:
        monkeypatch.setenv("FLEETDECK_HTTP_SERVER", "nginx")
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--http-server" in err
    assert "aiohttp, httptools" in err
    assert "'nginx'" in err
