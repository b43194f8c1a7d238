"""A deployment as a user names it: ``NAME``, ``NAMESPACE/NAME`` or ``CLUSTER/NAMESPACE/NAME``
(each also after ``deployment/``, as ``-o name`` prints it), every part checked as Kubernetes
checks a name before anything is looked up or sent."""

from __future__ import annotations

from dataclasses import dataclass

from console.names import LABEL_RULE, InvalidName, check_label

# What `-o name` prints before a deployment's name, and what kubectl also accepts.
DEPLOYMENT_KINDS = ("deployment", "deploy", "deployments")


@dataclass(frozen=True)
class TargetName:
    """What was typed, parsed: the parts not given are None (found by looking)."""

    name: str
    namespace: str | None = None
    cluster: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.cluster, self.namespace, self.name) if p is not None)


@dataclass(frozen=True, order=True)
class Target:
    """A deployment's whole identity in a session over several clusters."""

    cluster: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.name}"


def parse_target(text: str, what: str = "deployment") -> TargetName:
    """A deployment (or ``what``: a job) as typed. Raises :class:`InvalidName` (bad usage)
    naming the part and the rule it breaks."""
    kind, slash, rest = text.partition("/")
    if slash and (kind.lower() in DEPLOYMENT_KINDS if what == "deployment" else kind == what):
        text = rest
    parts = text.split("/")
    if len(parts) > 3:
        raise InvalidName(
            f"invalid {what} name {text!r}: give NAME, NAMESPACE/NAME or "
            f"CLUSTER/NAMESPACE/NAME, each part {LABEL_RULE}"
        )
    try:
        name = check_label(parts[-1], f"{what} name")
        namespace = check_label(parts[-2], "namespace") if len(parts) >= 2 else None
        cluster = check_label(parts[-3], "cluster name") if len(parts) == 3 else None
    except InvalidName as exc:
        if len(parts) == 1:
            raise
        # Say what was typed as a whole: `../../x` is a deployment the user meant to name.
        form = ("NAMESPACE/NAME", "CLUSTER/NAMESPACE/NAME")[len(parts) - 2]
        raise InvalidName(f"invalid {what} name {text!r} ({form}): {exc}") from None
    return TargetName(name, namespace, cluster)
