"""``fleetdeck``: the command line (parse, call, print). The TUI shares its actions.

Exit status: 0 success, 1 the action failed (for any target), 2 bad usage. ``--json`` output is
stable: lists of the types in ``console.model`` with their field names. A mutation on several
targets asks for confirmation showing the count and the targets unless ``--yes``; a read-only
profile or ``--readonly`` refuses mutations before anything is sent. Every mutation, dry runs
included, is appended to the audit log.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from console import __version__
from console.backends import BackendUnavailable
from console.backends.base import BackendError, error_line
from console.batch.journal import JournalError
from console.cli import batch as batch_cli
from console.cli import commands
from console.core import guard
from console.local.manage import AgentCommandError
from console.profile import ProfileError
from console.views.format import printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _targets(parser: argparse.ArgumentParser, *, many: bool = True) -> None:
    if many:
        parser.add_argument("names", nargs="*", metavar="NAME", help="deployments")
        parser.add_argument(
            "-l", "--selector", help="label selector, e.g. fleetdeck.io/model=digits"
        )
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    else:
        parser.add_argument("name", metavar="NAME", help="deployment")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="the server checks the change and says what it would do",
    )
    parser.add_argument("--json", action="store_true", help="results as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetdeck", description="The operations deck for fleets of model deployments."
    )
    parser.add_argument("--version", action="version", version=f"fleetdeck {__version__}")
    parser.add_argument("--profile", help="environment (default: $FLEETDECK_PROFILE or local)")
    parser.add_argument("--context", help="kube context (default: the profile's)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="namespace (default: the profile's first)")
    scope.add_argument("-A", "--all-namespaces", action="store_true")
    parser.add_argument("--readonly", action="store_true", help="refuse every change")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ls = sub.add_parser("ls", help="list model deployments")
    ls.add_argument("-l", "--selector")
    ls.add_argument("--json", action="store_true")

    deploy = sub.add_parser("deploy", help="deploy a model version as a new predictor")
    deploy.add_argument("name", metavar="NAME")
    deploy.add_argument("--model", required=True)
    deploy.add_argument("--version", type=int, required=True)
    deploy.add_argument("--replicas", type=int)
    deploy.add_argument("--gpus", type=int, default=0)
    deploy.add_argument("--wait", action="store_true", help="wait until ready, showing progress")
    deploy.add_argument(
        "--no-verify",
        action="store_true",
        help="skip checking the version exists in the profile's store",
    )
    deploy.add_argument("--dry-run", action="store_true")
    deploy.add_argument("--json", action="store_true")

    rollout = sub.add_parser("rollout", help="roll deployments out to another model version")
    _targets(rollout)
    rollout.add_argument("--version", type=int, required=True)
    rollout.add_argument("--no-verify", action="store_true")
    batch_cli.add_wave_flags(rollout)

    status = sub.add_parser("status", help="rollout status (kubectl rollout status)")
    status.add_argument("name", metavar="NAME")
    status.add_argument("--watch", action="store_true", help="follow until done")
    status.add_argument("--json", action="store_true")

    history = sub.add_parser("history", help="revisions with change-cause and model version")
    history.add_argument("name", metavar="NAME")
    history.add_argument("--json", action="store_true")

    rollback = sub.add_parser("rollback", help="back to the previous revision (or one given)")
    _targets(rollback)
    rollback.add_argument("--to-revision", type=int, default=0)

    for verb, text in (
        ("restart", "restart the pods"),
        ("pause", "pause rollouts"),
        ("resume", "resume rollouts"),
    ):
        _targets(sub.add_parser(verb, help=text))
    scale = sub.add_parser("scale", help="set the number of replicas")
    _targets(scale, many=False)
    scale.add_argument("--replicas", type=int, required=True)
    delete = sub.add_parser("delete", help="delete a deployment with its service and route")
    _targets(delete, many=False)
    delete.add_argument("--yes", action="store_true")

    train = sub.add_parser("train", help="launch a training Job (or a sweep with --grid)")
    train.add_argument("--model", required=True)
    train.add_argument("--data", required=True)
    train.add_argument("--gpus", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--param", action="append", default=[], metavar="K=V")
    train.add_argument("--grid", action="append", default=[], metavar="K=V1,V2")
    train.add_argument("--follow", action="store_true", help="then stream the jobs' logs")
    train.add_argument("--dry-run", action="store_true")
    train.add_argument("--json", action="store_true")
    score = sub.add_parser(
        "score", help="launch a batch scoring job: precompute a version's outputs for keyed inputs"
    )
    score.add_argument("--model", required=True)
    score.add_argument("--version", type=int, required=True)
    score.add_argument("--input", required=True, help="keyed inputs: a folder, file:// or hdfs://")
    score.add_argument("--batch-size", type=int, help="examples per model call")
    score.add_argument("--follow", action="store_true", help="then stream the job's logs")
    score.add_argument(
        "--no-verify",
        action="store_true",
        help="skip checking the version exists in the profile's store",
    )
    score.add_argument("--dry-run", action="store_true")
    score.add_argument("--json", action="store_true")
    cancel = sub.add_parser("cancel", help="stop training or scoring jobs (SIGTERM)")
    cancel.add_argument("jobs", nargs="+", metavar="JOB")
    cancel.add_argument("--yes", action="store_true")
    cancel.add_argument("--dry-run", action="store_true")
    cancel.add_argument("--json", action="store_true")

    jobs = sub.add_parser("jobs", help="training and scoring jobs")
    jobs.add_argument("--json", action="store_true")
    logs = sub.add_parser("logs", help="a pod's logs (POD, job/NAME or deploy/NAME)")
    logs.add_argument("target")
    logs.add_argument("-f", "--follow", action="store_true", help="keep streaming new lines")
    logs.add_argument("--since", help="e.g. 10m")
    logs.add_argument("--tail", type=int)
    logs.add_argument("--previous", action="store_true")
    logs.add_argument("-c", "--container")
    logs.add_argument("--timestamps", action="store_true")
    models = sub.add_parser("models", help="the store's models and versions")
    models.add_argument("model", nargs="?")
    models.add_argument("--json", action="store_true")
    top = sub.add_parser("top", help="live req/s, error %%, latency per deployment and fleet")
    top.add_argument("-l", "--selector")
    top.add_argument("--watch", action="store_true", help="refresh every interval until ^C")
    top.add_argument("--json", action="store_true", help="JSON (--watch: one object per line)")
    autoscale = sub.add_parser("autoscale", help="create or update a deployment's autoscaler")
    _targets(autoscale, many=False)
    autoscale.add_argument("--min", type=int, required=True, dest="min_replicas", metavar="R")
    autoscale.add_argument("--max", type=int, required=True, dest="max_replicas", metavar="R")
    scale_on = autoscale.add_mutually_exclusive_group(required=True)
    scale_on.add_argument("--cpu", type=int, metavar="PERCENT", help="target CPU utilisation")
    scale_on.add_argument(
        "--rps-per-pod", type=float, metavar="N", help="target prediction requests/s per pod"
    )
    agent = sub.add_parser("agent", help="the local runtime's agent (local profiles)")
    agent.add_argument("action", choices=("start", "stop", "status"))
    agent.add_argument("--json", action="store_true")
    audit = sub.add_parser("audit", help="what was done, by whom")
    audit.add_argument("--since", help="e.g. 1h")
    audit.add_argument("--json", action="store_true")
    batch_cli.add_batch_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:  # no subcommand: the deck (TUI)
            from console.tui.launch import open_deck

            return open_deck(args)
        return commands.run(args)
    except (commands.UsageError, ValueError) as exc:  # bad names, selectors, durations
        print(f"fleetdeck: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (
        ProfileError,
        BackendUnavailable,
        BackendError,  # the Kubernetes backend's, its templates', the local runtime's
        commands.ActionFailed,
        guard.Refusal,
        batch_cli.BatchFailed,
        JournalError,
        AgentCommandError,
    ) as exc:
        print(f"fleetdeck: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback: say what broke, in one line
        print(f"fleetdeck: {type(exc).__name__}: {printable(error_line(exc))}", file=sys.stderr)
        return EXIT_FAILED
