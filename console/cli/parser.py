"""The command line's grammar: every command, option, help text and example.

This module imports nothing but argparse (and the version string): ``fleetdeck --help`` and a
shell's completion request parse with it alone, and the commands import what they need when
they run. The global options (``--profile``, ``--context``, ``-n``, ``-A``, ``--readonly``,
``--request-timeout``) are accepted before or after the command, as kubectl accepts them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

from console import __version__

# What ``-o`` prints (``table`` is the default; ``--json`` is ``-o json``).
OUTPUTS = ("table", "wide", "json", "yaml", "name")
ON_FAILURE = ("rollback-wave", "rollback-all", "pause")  # console.batch.plan.ON_FAILURE
# Commands that read only (``guard`` knows the ones that change the fleet).
Completer = Callable[..., Iterable[str]]


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Examples (the epilog) keep their lines."""


def _completer(name: str) -> Completer:
    """A completer of ``console.cli.completion`` by name, imported only when a shell asks."""

    def complete(**kwargs: object) -> Iterable[str]:
        from console.cli import completion

        found: Completer = getattr(completion, name)
        return found(**kwargs)

    return complete


def _complete(action: argparse.Action, name: str) -> argparse.Action:
    action.completer = _completer(name)  # type: ignore[attr-defined]  # argcomplete's hook
    return action


def add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options of every command. On the top parser they hold the defaults; on each
    command's parser they default to nothing (SUPPRESS), so ``fleetdeck ls -A`` and
    ``fleetdeck -A ls`` both set ``all_namespaces`` and neither position resets the other."""
    default: object = None if top else argparse.SUPPRESS
    flag_default: object = False if top else argparse.SUPPRESS
    group = parser.add_argument_group("global options (before or after the command)")
    _complete(
        group.add_argument(
            "--profile",
            default=default,
            help="environment to act on (default: $FLEETDECK_PROFILE, else local)",
        ),
        "profiles",
    )
    _complete(
        group.add_argument(
            "--context",
            default=default,
            help="kube context to use (default: the profile's); a,b: one cluster per context",
        ),
        "contexts",
    )
    group.add_argument(
        "--cluster",
        default=default,
        metavar="NAME",
        help="one of the profile's [[clusters]] (needed when it names several)",
    )
    _complete(
        group.add_argument(
            "-n",
            "--namespace",
            default=default,
            help="one namespace instead of the profile's (default: the profile's first for a NAME)",
        ),
        "namespaces",
    )
    group.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        default=flag_default,
        help="read every namespace the user may list",
    )
    group.add_argument(
        "--readonly",
        action="store_true",
        default=flag_default,
        help="refuse every change before anything is sent",
    )
    group.add_argument(
        "--request-timeout",
        default=default,
        metavar="DURATION",
        help="longest wait on the API server, for opening and per request: 0 (no limit), "
        "10s, 1m (default: 30 s to open, each request's own)",
    )


def _output(parser: argparse.ArgumentParser, *, name: bool = True) -> None:
    """``-o`` (``--json`` an alias of ``-o json``) and ``--no-headers``."""
    choices = OUTPUTS if name else tuple(o for o in OUTPUTS if o != "name")
    parser.add_argument(
        "-o",
        "--output",
        choices=choices,
        default="table",
        help="table (default), wide (more columns), json, yaml"
        + (", name (KIND/NAME per line, for xargs)" if name else ""),
    )
    parser.add_argument(
        "--json", dest="output", action="store_const", const="json", help="same as -o json"
    )
    parser.add_argument(
        "--no-headers", action="store_true", help="tables without their header line"
    )


def _watch(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help=f"print the table, then a line per {what} that changes, until Ctrl-C",
    )


def _name(
    parser: argparse.ArgumentParser, help: str = "deployment (NAME or deployment/NAME)"
) -> None:
    _complete(parser.add_argument("name", metavar="NAME", help=help), "deployments")


def _targets(parser: argparse.ArgumentParser) -> None:
    """NAME... or -l SELECTOR, confirmation, dry run and JSON results: every action on
    deployments."""
    _complete(
        parser.add_argument(
            "names",
            nargs="*",
            metavar="NAME",
            help="deployments (NAME or deployment/NAME, as -o name prints them)",
        ),
        "deployments",
    )
    _selector(parser)
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _dry_run_json(parser)


def _selector(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-l",
        "--selector",
        metavar="SELECTOR",
        help="label selector as kubectl's: fleetdeck.io/model=digits, 'env in (a,b)', '!canary'",
    )


def _dry_run_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="the server checks the change and says what it would do; nothing is stored",
    )
    parser.add_argument("--json", action="store_true", help="results as JSON")


def _no_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip checking the version exists in the profile's store",
    )


def _version(parser: argparse.ArgumentParser, help: str) -> None:
    _complete(
        parser.add_argument("--version", type=int, required=True, metavar="N", help=help),
        "versions",
    )


def _model(parser: argparse.ArgumentParser, help: str = "model name in the store") -> None:
    _complete(parser.add_argument("--model", required=True, help=help), "models")


class Commands:
    """Adds a command with the global options and its examples."""

    def __init__(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self.sub = sub

    def add(self, name: str, help: str, examples: str) -> argparse.ArgumentParser:
        parser = self.sub.add_parser(
            name,
            help=help,
            description=(help[:1].upper() + help[1:] + ".").replace("%%", "%"),
            epilog="examples:\n" + examples.strip("\n"),
            formatter_class=_Formatter,
        )
        add_global_options(parser, top=False)
        return parser


def add_wave_flags(parser: argparse.ArgumentParser) -> None:
    """The plan flags of ``fleetdeck rollout``; any of them makes the rollout a batch."""
    group = parser.add_argument_group("waves (any of these runs the rollout as a batch)")
    group.add_argument(
        "--waves",
        help="cumulative wave sizes, e.g. 1,10%%,50%%,100%%; or, over several clusters, the "
        "clusters in order, e.g. canary,eu-west,* (* the rest; each in its own waves)",
    )
    group.add_argument(
        "--wave-by",
        choices=("cluster",),
        help="cluster after cluster, in the profile's order: each one's rollout (in --waves) "
        "done and healthy before the next starts; every cluster checked before any is sent",
    )
    group.add_argument("--max-parallel", type=int, metavar="N", help="requests in flight at once")
    group.add_argument("--halt-after", help="failed targets that halt the batch: 3 or 5%%")
    group.add_argument("--bake", type=float, metavar="SECONDS", help="watch each wave this long")
    group.add_argument(
        "--slo-p99-ratio", type=float, metavar="R", help="p99 may grow to R × its baseline"
    )
    group.add_argument(
        "--slo-error-percent",
        type=float,
        metavar="POINTS",
        help="errors may rise by this many points",
    )
    group.add_argument(
        "--on-failure", choices=ON_FAILURE, help="what a failed wave does (default: the profile's)"
    )
    group.add_argument(
        "--stuck-seconds",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="fail a rollout whose new pods stay stuck this long (CrashLoopBackOff, ...)",
    )


def _add_batch(commands: Commands) -> None:
    batch = commands.add(
        "batch",
        "batches: list, status, resume, halt, abort",
        "  fleetdeck batch list\n  fleetdeck batch status 20261204-0312-ab12\n"
        "  fleetdeck batch abort 20261204-0312-ab12",
    )
    verbs = Commands(batch.add_subparsers(dest="batch_command", metavar="VERB", required=True))
    listed = verbs.add("list", "every batch, newest last", "  fleetdeck batch list -o json")
    _output(listed, name=False)
    for verb, text in (
        ("status", "where a batch stands and why"),
        ("resume", "continue a halted or killed batch from its journal"),
        ("halt", "ask the running batch to stop after the requests in flight"),
        ("abort", "stop a batch and roll back everything it changed"),
    ):
        parser = verbs.add(verb, text, f"  fleetdeck batch {verb} 20261204-0312-ab12")
        parser.add_argument("id", metavar="ID", help="the batch's id (fleetdeck batch list)")
        if verb == "status":
            _output(parser, name=False)
        else:
            parser.add_argument("--json", action="store_true", help="results as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetdeck",
        description="The operations deck for fleets of model deployments. Without a command: "
        "the deck (the terminal UI).",
        epilog="examples:\n  fleetdeck                      the deck\n"
        "  fleetdeck ls -A -o wide\n  fleetdeck --profile kwok logs -n models -l app=x -f\n"
        "  fleetdeck completion bash > ~/.local/share/bash-completion/completions/fleetdeck",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"fleetdeck {__version__}")
    add_global_options(parser, top=True)
    commands = Commands(parser.add_subparsers(dest="command", metavar="COMMAND"))

    ls = commands.add(
        "ls",
        "list model deployments",
        "  fleetdeck ls -A\n  fleetdeck ls -l fleetdeck.io/model=digits -o wide\n"
        "  fleetdeck ls -o name | xargs fleetdeck restart --yes\n  fleetdeck ls -w",
    )
    _selector(ls)
    _output(ls)
    _watch(ls, "deployment")

    describe = commands.add(
        "describe",
        "a deployment in full: model version and metrics, revisions, pods, conditions, events, "
        "autoscaler, route",
        "  fleetdeck describe digits\n  fleetdeck describe digits -n models -o yaml",
    )
    _name(describe)
    _output(describe)

    events = commands.add(
        "events",
        "events of a deployment (its ReplicaSets and pods), or of every deployment",
        "  fleetdeck events\n  fleetdeck events digits -o json",
    )
    _complete(
        events.add_argument(
            "name", nargs="?", metavar="NAME", help="deployment (default: every deployment)"
        ),
        "deployments",
    )
    _output(events, name=False)

    deploy = commands.add(
        "deploy",
        "deploy a model version as a new predictor",
        "  fleetdeck deploy digits --model digits --version 3 --wait\n"
        "  fleetdeck deploy digits-gpu --model digits --version 3 --gpus 1 --replicas 2 --dry-run",
    )
    _name(deploy, "the new deployment's name")
    _model(deploy)
    _version(deploy, "model version to serve")
    deploy.add_argument("--replicas", type=int, metavar="N", help="default: the profile's")
    deploy.add_argument("--gpus", type=int, default=0, metavar="N", help="GPUs per replica")
    deploy.add_argument("--wait", action="store_true", help="wait until ready, showing progress")
    _no_verify(deploy)
    _dry_run_json(deploy)

    rollout = commands.add(
        "rollout",
        "roll deployments out to another model version",
        "  fleetdeck rollout digits --version 4\n"
        "  fleetdeck rollout -l fleetdeck.io/model=digits --version 4 --waves 1,10%,100% --yes",
    )
    _targets(rollout)
    _version(rollout, "model version to roll out")
    _no_verify(rollout)
    add_wave_flags(rollout)

    status = commands.add(
        "status",
        "rollout status (kubectl rollout status)",
        "  fleetdeck status digits\n  fleetdeck status -w digits --timeout 5m",
    )
    _name(status)
    status.add_argument("-w", "--watch", action="store_true", help="follow until done")
    status.add_argument(
        "--timeout",
        metavar="DURATION",
        help="with --watch: give up (exit 1) after this long, e.g. 90s, 5m (default: no limit)",
    )
    _output(status, name=False)

    history = commands.add(
        "history",
        "revisions with change-cause and model version",
        "  fleetdeck history digits\n  fleetdeck history digits -o yaml",
    )
    _name(history)
    _output(history, name=False)

    rollback = commands.add(
        "rollback",
        "back to the previous revision (or one given)",
        "  fleetdeck rollback digits\n  fleetdeck rollback digits --to-revision 2",
    )
    _targets(rollback)
    rollback.add_argument(
        "--to-revision",
        type=int,
        default=0,
        metavar="N",
        help="revision to go back to (default: the previous one)",
    )
    for verb, text in (
        ("restart", "restart the pods"),
        ("pause", "pause rollouts"),
        ("resume", "resume rollouts"),
    ):
        _targets(
            commands.add(
                verb, text, f"  fleetdeck {verb} digits\n  fleetdeck {verb} -l team=vision --yes"
            )
        )
    scale = commands.add(
        "scale",
        "set the number of replicas",
        "  fleetdeck scale digits --replicas 3\n"
        "  fleetdeck scale -l fleetdeck.io/model=digits --replicas 0 --yes",
    )
    _targets(scale)
    scale.add_argument("--replicas", type=int, required=True, metavar="N", help="replicas wanted")
    delete = commands.add(
        "delete",
        "delete a deployment with its service and route",
        "  fleetdeck delete digits --dry-run\n  fleetdeck delete digits --yes",
    )
    _name(delete)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _dry_run_json(delete)

    train = commands.add(
        "train",
        "launch a training Job (or a sweep with --grid)",
        "  fleetdeck train --model digits --data hdfs://nn:9870/digits --gpus 1 --follow\n"
        "  fleetdeck train --model digits --data /data/digits --grid learning_rate=0.001,0.01",
    )
    _model(train, "model to train (its name in the store)")
    train.add_argument("--data", required=True, help="training data: a folder, file:// or hdfs://")
    train.add_argument("--gpus", type=int, metavar="N", help="GPUs (default: the profile's)")
    train.add_argument("--epochs", type=int, metavar="N", help="epochs (default: the trainer's)")
    train.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="a hyper-parameter (repeat)"
    )
    train.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="K=V1,V2",
        help="a sweep over these values (repeat: the product)",
    )
    train.add_argument("--follow", action="store_true", help="then stream the jobs' logs")
    _dry_run_json(train)

    score = commands.add(
        "score",
        "launch a batch scoring job: precompute a version's outputs for keyed inputs",
        "  fleetdeck score --model digits --version 3 --input hdfs://nn:9870/keys --follow",
    )
    _model(score)
    _version(score, "model version to score with")
    score.add_argument("--input", required=True, help="keyed inputs: a folder, file:// or hdfs://")
    score.add_argument("--batch-size", type=int, metavar="N", help="examples per model call")
    score.add_argument("--follow", action="store_true", help="then stream the job's logs")
    _no_verify(score)
    _dry_run_json(score)

    cancel = commands.add(
        "cancel",
        "stop training or scoring jobs (SIGTERM)",
        "  fleetdeck cancel train-digits-1a2b3\n"
        "  fleetdeck jobs -o name | xargs fleetdeck cancel --yes",
    )
    cancel.add_argument(
        "jobs", nargs="+", metavar="JOB", help="jobs: NAME, NAMESPACE/NAME, CLUSTER/NAMESPACE/NAME"
    )
    cancel.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _dry_run_json(cancel)

    jobs = commands.add(
        "jobs",
        "training and scoring jobs",
        "  fleetdeck jobs\n  fleetdeck jobs -w\n  fleetdeck jobs -o name",
    )
    _output(jobs)
    _watch(jobs, "job")

    logs = commands.add(
        "logs",
        "pods' logs (POD, job/NAME, deploy/NAME or -l SELECTOR)",
        "  fleetdeck logs deploy/digits -f\n"
        "  fleetdeck logs -l fleetdeck.io/model=digits --since 10m\n"
        "  fleetdeck logs -n models -p digits-7d9f-abcde",
    )
    _complete(
        logs.add_argument(
            "target", nargs="?", metavar="TARGET", help="POD, job/NAME or deploy/NAME"
        ),
        "log_targets",
    )
    logs.add_argument(
        "-l",
        "--selector",
        metavar="SELECTOR",
        help="the pods of every deployment the selector matches, merged and prefixed",
    )
    logs.add_argument("-f", "--follow", action="store_true", help="keep streaming new lines")
    since = logs.add_mutually_exclusive_group()
    since.add_argument("--since", metavar="DURATION", help="only lines newer than this: 10m, 1h")
    since.add_argument("--since-time", metavar="TIME", help="only lines after this RFC 3339 time")
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines of each pod")
    logs.add_argument(
        "-p", "--previous", action="store_true", help="the previous (crashed) container's log"
    )
    containers = logs.add_mutually_exclusive_group()
    containers.add_argument("-c", "--container", help="which container (default: the first)")
    containers.add_argument(
        "--all-containers", action="store_true", help="every container of each pod, prefixed"
    )
    logs.add_argument("--timestamps", action="store_true", help="each line with its time")

    models = commands.add(
        "models",
        "the store's models and versions",
        "  fleetdeck models\n  fleetdeck models digits -o yaml",
    )
    _complete(
        models.add_argument("model", nargs="?", help="one model (default: every model)"),
        "models",
    )
    _output(models, name=False)

    top = commands.add(
        "top",
        "live req/s, error %%, latency per deployment and fleet",
        "  fleetdeck top\n  fleetdeck top -l team=vision --watch",
    )
    _selector(top)
    top.add_argument(
        "-w", "--watch", action="store_true", help="refresh every interval until Ctrl-C"
    )
    top.add_argument("--json", action="store_true", help="JSON (--watch: one object per line)")

    watch = commands.add(
        "watch",
        "print SLO breaches and halted batches as they happen; exit 1 if any did",
        "  fleetdeck watch --for 10m\n  fleetdeck watch -l fleetdeck.io/model=digits --json",
    )
    _selector(watch)
    watch.add_argument(
        "--for", dest="for_", metavar="DURATION", help="stop after 30s, 10m, 1h (default: Ctrl-C)"
    )
    watch.add_argument("--json", action="store_true", help="one JSON object per event")

    autoscale = commands.add(
        "autoscale",
        "create or update a deployment's autoscaler",
        "  fleetdeck autoscale digits --min 2 --max 10 --rps-per-pod 50\n"
        "  fleetdeck autoscale digits --min 1 --max 4 --cpu 70 --dry-run\n"
        "  fleetdeck autoscale digits --min 1 --max 3 --rps-per-pod 20 --scale-down-window 60",
    )
    _name(autoscale)
    _dry_run_json(autoscale)
    autoscale.add_argument(
        "--min", type=int, required=True, dest="min_replicas", metavar="R", help="fewest replicas"
    )
    autoscale.add_argument(
        "--max", type=int, required=True, dest="max_replicas", metavar="R", help="most replicas"
    )
    scale_on = autoscale.add_mutually_exclusive_group(required=True)
    scale_on.add_argument("--cpu", type=int, metavar="PERCENT", help="target CPU utilisation")
    scale_on.add_argument(
        "--rps-per-pod", type=float, metavar="N", help="target prediction requests/s per pod"
    )
    autoscale.add_argument(
        "--scale-down-window",
        type=int,
        dest="scale_down_seconds",
        metavar="SECONDS",
        help="how long a lower recommendation must hold before replicas go down "
        "(the HPA's scale-down stabilization window; default 300)",
    )

    agent = commands.add(
        "agent",
        "the local runtime's agent (local profiles)",
        "  fleetdeck agent status\n  fleetdeck agent stop",
    )
    agent.add_argument("action", choices=("start", "stop", "status"), help="what to do")
    agent.add_argument("--json", action="store_true", help="results as JSON")

    audit = commands.add(
        "audit", "what was done, by whom", "  fleetdeck audit --since 1h\n  fleetdeck audit -o json"
    )
    audit.add_argument("--since", metavar="DURATION", help="only entries newer than this: 1h")
    _output(audit, name=False)

    changes = commands.add(
        "changes",
        "what changed, newest first: rollouts, scales, batches, kubectl's changes, new versions",
        "  fleetdeck changes --since 1h\n  fleetdeck changes -l fleetdeck.io/model=digits -o json",
    )
    changes.add_argument("--since", metavar="DURATION", help="only changes newer than this: 1h")
    _selector(changes)
    _output(changes)

    undo = commands.add(
        "undo",
        "put the deployments a change touched back as they were before it",
        "  fleetdeck undo 3f9a2b1 --dry-run\n  fleetdeck undo 3f9a2b1 --yes",
    )
    undo.add_argument("change", metavar="CHANGE_ID", help="as `fleetdeck changes` shows it")
    undo.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    _dry_run_json(undo)

    _add_batch(commands)

    completion = commands.add(
        "completion",
        "print the shell completion script",
        "  source <(fleetdeck completion bash)\n"
        '  fleetdeck completion zsh > "${fpath[1]}/_fleetdeck"\n'
        "  fleetdeck completion fish > ~/.config/fish/completions/fleetdeck.fish",
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell")
    return parser
