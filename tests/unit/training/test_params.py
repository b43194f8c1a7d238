"""``--param`` and ``--grid`` parsing: what it reads, what it refuses, and what it never imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from training.params import ParamError, parse_grid, parse_param, parse_value


def test_a_value_is_an_int_a_float_or_the_text() -> None:
    assert parse_value("16") == 16
    assert isinstance(parse_value("16"), int)
    assert parse_value("0.003") == 0.003
    assert parse_value("1e-3") == 0.001
    assert parse_value("relu") == "relu"
    assert parse_value("") == ""


def test_a_param_is_key_equals_value() -> None:
    assert parse_param("width=32") == ("width", 32)
    assert parse_param("name=a=b") == ("name", "a=b")  # the first = splits
    for bad in ("width", "=3", ""):
        with pytest.raises(ParamError, match="expected key=value"):
            parse_param(bad)


def test_a_grid_is_a_known_key_and_its_values() -> None:
    assert parse_grid("learning_rate=0.001,0.01") == ("learning_rate", [0.001, 0.01])
    assert parse_grid("width=8,16,") == ("width", [8, 16])  # an empty value is skipped
    with pytest.raises(ParamError, match="expected key=v1,v2"):
        parse_grid("width=")
    with pytest.raises(ParamError, match="unknown grid key 'colour'; known: learning_rate"):
        parse_grid("colour=red,blue")


def test_a_param_error_is_shown_by_argparse_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--grid", type=parse_grid, action="append")
    with pytest.raises(SystemExit):
        parser.parse_args(["--grid", "colour=red"])
    assert "unknown grid key 'colour'" in capsys.readouterr().err


def test_the_parsers_and_the_console_that_uses_them_import_neither_numpy_nor_tensorflow() -> None:
    code = (
        "import sys\n"
        "import training.params, console.cli.commands, console.tui.widgets.train_form\n"
        "print(sorted(m for m in ('numpy', 'tensorflow', 'keras') if m in sys.modules))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "[]"
