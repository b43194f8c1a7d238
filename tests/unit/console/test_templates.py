"""Templates are filled value by value: structure comes only from the YAML file."""

from __future__ import annotations

import pytest

from console.backends.kubernetes.manifests import ManifestError, check_name
from console.backends.kubernetes.templates import TemplateError, _fill


def test_a_whole_placeholder_takes_any_value_and_a_partial_one_its_text() -> None:
    template = {"labels": "${labels}", "path": "/v1/models/${name}:predict", "n": "${n}"}
    filled = _fill(template, {"labels": {"a": "b"}, "name": "digits", "n": 3}, "t")
    assert filled == {"labels": {"a": "b"}, "path": "/v1/models/digits:predict", "n": 3}


def test_keys_filled_with_none_are_left_out() -> None:
    filled = _fill({"spec": {"ingressClassName": "${cls}", "rules": []}}, {"cls": None}, "t")
    assert filled == {"spec": {"rules": []}}


def test_a_value_cannot_inject_structure() -> None:
    filled = _fill({"name": "${name}"}, {"name": "x\nkind: Secret"}, "t")
    assert filled == {"name": "x\nkind: Secret"}  # a string stays a string


def test_a_missing_value_names_the_template_and_the_placeholder() -> None:
    with pytest.raises(TemplateError, match=r"template job: no value for \$\{image\}"):
        _fill({"image": "${image}"}, {}, "job")


@pytest.mark.parametrize("name", ["Digits", "-digits", "digits_v2", "a" * 64, ""])
def test_names_that_kubernetes_would_refuse_are_refused_first(name: str) -> None:
    with pytest.raises(ManifestError, match="invalid deployment name"):
        check_name(name)
