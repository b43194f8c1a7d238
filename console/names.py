"""Names as Kubernetes validates them, checked once for every front-end and the local agent.

Every name a user, a request or a stored row supplies (namespace, deployment, pod, job) is
untrusted: it may end up in a path, a URL, a label or a terminal. A name that passes
:func:`check_label` is a DNS-1123 label (RFC 1123: lower-case letters, digits and '-', starting
and ending with a letter or digit, at most 63 characters), so it can never hold a '/', '..', a
newline or an escape sequence. ``fullmatch`` matters: ``$`` also matches before a final newline.
"""

from __future__ import annotations

import re

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_RULE = (
    "lower-case letters, digits and '-', starting and ending with a letter or digit, "
    f"at most {DNS1123_LABEL_MAX} characters (a DNS-1123 label, as Kubernetes names are)"
)
SUBDOMAIN_RULE = (
    "lower-case letters, digits, '-' and '.', each dot-separated part starting and ending "
    f"with a letter or digit and at most {DNS1123_LABEL_MAX} characters, "
    f"{DNS1123_SUBDOMAIN_MAX} in all (a DNS-1123 subdomain, as Kubernetes pod names are)"
)


class InvalidName(ValueError):
    """A name that breaks the naming rule; the message names the rule."""


def is_label(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= DNS1123_LABEL_MAX
        and DNS1123_LABEL.fullmatch(value) is not None
    )


def check_label(value: object, what: str = "name") -> str:
    """``value`` when it is a DNS-1123 label; else :class:`InvalidName` saying what to fix."""
    if not is_label(value):
        raise InvalidName(f"invalid {what} {value!r}: use {LABEL_RULE}")
    assert isinstance(value, str)
    return value


def is_subdomain(value: object) -> bool:
    """Labels joined by dots: never empty, never '.' or '..', never a '/'."""
    return (
        isinstance(value, str)
        and len(value) <= DNS1123_SUBDOMAIN_MAX
        and all(is_label(label) for label in value.split("."))
    )


def check_subdomain(value: object, what: str = "pod name") -> str:
    """``value`` when it is a DNS-1123 subdomain (what pod names are: a Deployment's pods add
    a suffix to its name, so they may be longer than a label); else :class:`InvalidName`."""
    if not is_subdomain(value):
        raise InvalidName(f"invalid {what} {value!r}: use {SUBDOMAIN_RULE}")
    assert isinstance(value, str)
    return value


JOB_NAME_BASE_MAX = 40  # room for the '-<5 hex>' suffix and a sweep's '-<trial>'


def job_name_base(prefix: str, model: str) -> str:
    """A job name's base (``train-<model>``) from a model name, kept a DNS-1123 label: a
    model's '.' and '_' (allowed in the store) become '-'."""
    label = model.replace(".", "-").replace("_", "-")
    return f"{prefix}-{label}"[:JOB_NAME_BASE_MAX].rstrip("-")
