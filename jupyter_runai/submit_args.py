"""Submit options: the one place where they are parsed (``runai submit``, ``%runai submit``).

* :func:`add_submit_arguments` adds the options to an ``argparse`` parser, and
  :func:`build_submit_parser` makes a parser with only them;
* :func:`split_command` cuts an argument list at the first ``--``: what comes
  after is the command;
* :func:`spec_from_args` turns the parsed options into a ``WorkloadSpec``-shaped
  dict holding only what the user set (the server fills in the rest, after its
  policies), validated locally with ``WorkloadSpec.model_validate`` so that a
  bad value is reported, naming its field and option, before any network call;
* :func:`parse_submit` does all three.

Errors are :class:`SubmitArgsError` (a ``ValueError``): ``errors`` is a list of
``{"field", "message", "allowed", "option"}`` items.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import string
from typing import Any, Sequence

__all__ = [
    "KINDS",
    "SubmitArgsError",
    "add_submit_arguments",
    "build_submit_parser",
    "parse_submit",
    "spec_from_args",
    "split_command",
    "suggest_name",
]

KINDS = ("workspace", "training", "distributed", "inference")

# field of the spec -> the option that sets it (named in error messages)
FIELD_OPTIONS: dict[str, str] = {
    "name": "NAME",
    "project": "--project",
    "kind": "--kind",
    "priority_class": "--priority-class",
    "preemptible": "--preemptible/--non-preemptible",
    "resources.gpu": "--gpu",
    "resources.gpu_memory": "--gpu-memory",
    "resources.gpu_limit": "--gpu-limit",
    "resources.gpu_devices": "--gpu-devices",
    "resources.cpu": "--cpu",
    "resources.cpu_limit": "--cpu-limit",
    "resources.memory": "--memory",
    "resources.memory_limit": "--memory-limit",
    "node_pools": "--node-pools",
    "queue_anyway": "--queue-anyway",
    "image": "--image",
    "command": "-- COMMAND",
    "working_dir": "--working-dir",
    "python_env": "--python-env",
    "environment": "--environment",
    "data_sources": "--data-source",
    "credentials": "--credential",
    "workers": "--workers",
    "min_available": "--min-available",
    "min_replicas": "--min-replicas",
    "max_replicas": "--max-replicas",
    "backoff_limit": "--backoff-limit",
    "file": "-f/--file",
}

DESCRIPTION = """\
Submit a workload: a training job (the default), a distributed training job
(master + workers, started together), an interactive workspace or an inference
endpoint. Resources are per pod. Everything after `--` is the command: several
words run as they are; one quoted string runs in a shell.
"""

EPILOG = """\
GPU requests (per pod):
  -g 1                        one whole GPU          -g 2   two whole GPUs
  -g 0.5                      half of one GPU (a fraction; shares the device)
  --gpu-memory 20Gi           20Gi of one GPU's memory instead of a fraction
  -g 0.5 --gpu-devices 4      half of each of 4 GPUs of one node (2 GPUs of quota)
  -g 0.25 --gpu-limit 0.75    guaranteed 0.25, bursts to 0.75 when the GPU has room
Run:ai's flag names work too: --gpu-devices-request N (N whole GPUs, or with a
portion or memory request the number of devices), --gpu-portion-request,
--gpu-portion-limit, --gpu-memory-request, --cpu-core-request/-limit,
--cpu-memory-request/-limit, -i/--image, --priority, --preemptibility.

examples:
  runai submit -g 1 -- python train.py --epochs 3
  runai submit bert -g 0.5 -e EPOCHS=3 -e LR=0.1 --data-source imagenet -- "python train.py > out.txt"
  runai submit ddp --kind distributed --workers 3 -g 1 -- torchrun train.py
  runai submit nb --kind workspace --gpu-memory 20Gi
  runai submit llm --kind inference -g 1 --min-replicas 1 --max-replicas 4 -- python serve.py
  runai submit -p team-a --node-pools a100,default --preemptible -g 2 -- python big.py

Policies: admins may set, per project and kind, the defaults a field left out gets and the
values allowed (a refusal lists every rule broken with what is allowed). See them with
  runai policy effective training -p team-a
"""


class SubmitArgsError(ValueError):
    """Bad submit options; ``errors`` names each field (and the option that sets it)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("\n".join(error["message"] for error in errors))

    @property
    def field(self) -> str | None:
        return self.errors[0].get("field") if self.errors else None


def _error(field: str, message: str, allowed: Any = None) -> SubmitArgsError:
    option = FIELD_OPTIONS.get(field)
    text = f"{field}: {message}" + (f" (option {option})" if option else "")
    return SubmitArgsError([{"field": field, "message": text, "allowed": allowed, "option": option}])


def suggest_name(kind: str | None = None) -> str:
    """A fresh name: ``<kind>-<4 random lowercase letters or digits>``."""
    alphabet = string.ascii_lowercase + string.digits
    kind = kind if kind in KINDS else "training"
    return f"{kind}-{''.join(secrets.choice(alphabet) for _ in range(4))}"


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """Cut ``argv`` at the first ``--``: (options, command words) or (argv, None) without one."""
    argv = list(argv)
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1:]
    return argv, None


class _ListAction(argparse.Action):
    """Repeatable option whose values may also be comma-separated: ``--x a,b --x c`` -> [a, b, c]."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        items = list(getattr(namespace, self.dest, None) or [])
        items.extend(part.strip() for part in str(values).split(",") if part.strip())
        setattr(namespace, self.dest, items)


#: where -p/--project comes from when it is not given (client.default_project), for every --help
PROJECT_DEFAULT = ("$RUNAI_PROJECT, else the one saved by `runai config project NAME`, else the server's "
                   "first project you may submit to")


def add_submit_arguments(parser: argparse.ArgumentParser, *, project_option: bool = True,
                         kind: str | None = None) -> argparse.ArgumentParser:
    """Add the submit options to ``parser`` (``project_option=False`` when the caller has its own ``-p``).

    ``kind`` fixes the kind (``runai workspace submit``, Run:ai's command tree): no ``--kind`` and no
    ``--interactive`` then. Each option also answers to its Run:ai CLI name (v2, and v1 where it differs),
    so ``--gpu-portion-request 0.5`` and ``-g 0.5`` are the same option."""
    parser.add_argument(
        "name", metavar="NAME", nargs="?", default=None,
        help="workload name: lowercase letters, digits and '-' (a DNS-1123 label), unique in its project. "
             "Default: <kind>-<4 random characters>, e.g. training-k3x9",
    )
    if kind is None:
        chosen = parser.add_mutually_exclusive_group()
        chosen.add_argument(
            "--kind", default=None, metavar="KIND",
            help="workspace (interactive, not preemptible; its command serves on $PORT and it is Running once "
                 "that answers), training (one pod, preemptible; the default), distributed (master + --workers, "
                 "started together) or inference (replicas behind one URL, each serving on $PORT)",
        )
        chosen.add_argument("--interactive", dest="kind", action="store_const", const="workspace",
                            help="the same as --kind workspace (Run:ai v1)")
    else:
        parser.set_defaults(kind=kind)
    what = parser.add_argument_group("GPU, CPU and memory (per pod)")
    what.add_argument(
        "-g", "--gpu", "--gpu-portion-request", dest="gpu", default=None, metavar="N",
        help="GPUs: whole devices (1, 2, ...) or a fraction of one device (0.5). Example: -g 0.5",
    )
    what.add_argument(
        "--gpu-memory", "--gpu-memory-request", dest="gpu_memory", default=None, metavar="QUANTITY",
        help="GPU memory per device instead of a fraction, e.g. --gpu-memory 20Gi (not with --gpu)",
    )
    what.add_argument(
        "--gpu-limit", "--gpu-portion-limit", dest="gpu_limit", default=None, metavar="FRACTION",
        help="dynamic fraction: burst up to this share of each device when it has room "
             "(gpu <= limit <= 1). Example: -g 0.25 --gpu-limit 0.75",
    )
    what.add_argument(
        "--gpu-devices", default=None, metavar="N",
        help="the same fraction (or --gpu-memory) on each of N devices of one node. "
             "Example: -g 0.5 --gpu-devices 4",
    )
    what.add_argument(
        "--gpu-devices-request", default=None, metavar="N",
        help="Run:ai's device count: alone, N whole GPUs (-g N); with a fraction or --gpu-memory, the "
             "number of devices (--gpu-devices N)",
    )
    what.add_argument("--cpu", "--cpu-core-request", dest="cpu", default=None, metavar="CORES",
                      help="CPU request: cores (2, 1.5) or millicores (500m)")
    what.add_argument("--cpu-limit", "--cpu-core-limit", dest="cpu_limit", default=None, metavar="CORES",
                      help="CPU limit, at least --cpu (default: unlimited)")
    what.add_argument("--memory", "--cpu-memory-request", dest="memory", default=None, metavar="QUANTITY",
                      help="memory request, e.g. 8Gi or 512Mi")
    what.add_argument("--memory-limit", "--cpu-memory-limit", dest="memory_limit", default=None,
                      metavar="QUANTITY", help="memory limit, at least --memory (default: unlimited)")

    where = parser.add_argument_group("where and how it is scheduled")
    if project_option:
        where.add_argument(
            "-p", "--project", default=None,
            help=f"project (queue) to run in. Default: {PROJECT_DEFAULT}",
        )
    where.add_argument(
        "--node-pools", dest="node_pools", action=_ListAction, default=None, metavar="POOL[,POOL...]",
        help="node pools to run in, most preferred first. Example: --node-pools a100,default",
    )
    preempt = where.add_mutually_exclusive_group()
    preempt.add_argument(
        "--preemptible", dest="preemptible", action="store_const", const=True, default=None,
        help="may be stopped to make room, and may use idle GPUs beyond the project's quota "
             "(default for training and distributed)",
    )
    preempt.add_argument(
        "--non-preemptible", dest="preemptible", action="store_const", const=False,
        help="never stopped by the scheduler; runs only inside the project's deserved quota "
             "(default for workspaces and inference)",
    )
    preempt.add_argument(
        "--preemptibility", dest="preemptible", type=_preemptibility, metavar="{preemptible,non-preemptible}",
        help="Run:ai's form of --preemptible / --non-preemptible",
    )
    where.add_argument(
        "--queue-anyway", dest="queue_anyway", action="store_const", const=True, default=None,
        help="queue it even when it could never run as the cluster and the project's limits are now "
             "(more GPUs, GPU memory, CPU or memory than any node has, or above a limit); without it such "
             "a request is refused with the reason",
    )
    where.add_argument(
        "--priority-class", "--priority", dest="priority_class", default=None, metavar="CLASS",
        help="train (50), build-preemptible (75), build (100) or inference (125). Default: by kind",
    )

    scale = parser.add_argument_group("distributed and inference")
    scale.add_argument("--workers", default=None, metavar="N",
                       help="distributed: number of worker pods (plus a master). Example: --workers 3")
    scale.add_argument("--min-available", default=None, metavar="N",
                       help="distributed: pods that must start together (default: all)")
    scale.add_argument("--min-replicas", default=None, metavar="N", help="inference: replicas kept running (default 1)")
    scale.add_argument("--max-replicas", default=None, metavar="N",
                       help="inference: replicas to grow to under load (default: --min-replicas)")
    scale.add_argument("--backoff-limit", default=None, metavar="N",
                       help="training and distributed: times a failed run is started again (default 0)")

    run = parser.add_argument_group("what runs")
    run.add_argument("-f", "--file", default=None, metavar="PATH",
                     help="a workload spec in YAML or JSON (our schema: docs/workloads.md; `-` reads standard "
                          "input); the options given here are laid over it. Example: -f train.yaml -g 1")
    run.add_argument("-i", "--image", default=None,
                     help="container image (used on Kubernetes; recorded on the local cluster). "
                          "Example: --image pytorch/pytorch:2.5")
    run.add_argument("--working-dir", default=None, metavar="DIR", help="directory the command starts in")
    run.add_argument("--python-env", default=None, metavar="PATH",
                     help="local cluster: venv or conda prefix to run in (default: the server's)")
    run.add_argument(
        "-e", "--environment", action="append", default=None, metavar="KEY=VALUE",
        help="environment variable of every pod; repeat for more. Example: -e EPOCHS=3 -e LR=0.1",
    )
    run.add_argument(
        "--data-source", dest="data_sources", action=_ListAction, default=None, metavar="NAME",
        help="attach the project's data source NAME; repeat for more. Example: --data-source imagenet",
    )
    run.add_argument(
        "--credential", dest="credentials", action=_ListAction, default=None, metavar="NAME",
        help="inject the project's credential NAME; repeat for more. Example: --credential hf-token",
    )
    # not a field of the spec: what the submitting command does next (runai submit, %runai submit)
    run.add_argument(
        "--attach", action="store_true", default=False,
        help="wait until it runs, then print its log (the first pod's) as it comes until it ends; exit 1 if "
             "it failed. Ctrl-C stops following and leaves it running (Run:ai v1's --attach)",
    )
    return parser


def _preemptibility(text: str) -> bool:
    """``--preemptibility preemptible|non-preemptible`` -> True / False (argparse names the option)."""
    value = text.strip().lower()
    if value not in ("preemptible", "non-preemptible"):
        raise argparse.ArgumentTypeError(f"{text!r}: allowed: preemptible, non-preemptible")
    return value == "preemptible"


def build_submit_parser(prog: str = "runai submit", **kwargs: Any) -> argparse.ArgumentParser:
    """A parser with the submit options only (``-- COMMAND`` is cut off by :func:`split_command`)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        usage=f"{prog} [NAME] [options] [-- COMMAND ...]",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    return add_submit_arguments(parser)


def _number(text: str | None) -> Any:
    """'1' -> 1, '0.5' -> 0.5; anything else as given, for the model to reject by name."""
    if text is None:
        return None
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _environment(items: list[str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _error(
                "environment",
                f"each -e must be KEY=VALUE (e.g. -e EPOCHS=3; -e KEY= for an empty value); got {item!r}",
                allowed="KEY=VALUE",
            )
        env[key.strip()] = value
    return env


def spec_from_args(ns: argparse.Namespace, command: Sequence[str] | str | None = None) -> dict[str, Any]:
    """The ``WorkloadSpec`` dict the options ask for: only the fields set (plus name and project).

    ``command`` (the words after ``--``; also read from ``ns.command``) becomes
    ``command``: one word is a shell command line, several run as they are.
    Raises :class:`SubmitArgsError` naming the field and option when the result
    does not validate.
    """
    get = lambda key: getattr(ns, key, None)  # noqa: E731
    kind = get("kind")
    from .client import default_project  # -p, else $RUNAI_PROJECT, else `runai config project`, else the server's

    spec: dict[str, Any] = {}
    if get("name"):
        spec["name"] = get("name")
    if get("project"):
        spec["project"] = get("project")
    if kind is not None:
        spec["kind"] = kind.strip()

    resources: dict[str, Any] = {}
    for key in ("gpu", "gpu_limit", "gpu_devices"):
        if get(key) is not None:
            resources[key] = _number(get(key))
    _devices_request(resources, get("gpu_devices_request"), get("gpu_memory"))
    for key in ("gpu_memory", "cpu", "cpu_limit", "memory", "memory_limit"):
        if get(key) is not None:
            resources[key] = get(key)
    if resources:
        spec["resources"] = resources

    for key in ("workers", "min_available", "min_replicas", "max_replicas", "backoff_limit"):
        if get(key) is not None:
            spec[key] = _number(get(key))
    for key in ("priority_class", "image", "working_dir", "python_env"):
        if get(key) is not None:
            spec[key] = get(key)
    if get("preemptible") is not None:
        spec["preemptible"] = get("preemptible")
    if get("queue_anyway"):
        spec["queue_anyway"] = True
    for key in ("node_pools", "data_sources", "credentials"):
        if get(key):
            spec[key] = list(get(key))
    environment = _environment(get("environment"))
    if environment:
        spec["environment"] = environment

    if command is None:
        command = get("command")
    if command is not None:
        if isinstance(command, str):
            spec["command"] = command
        else:
            words = list(command)
            if not words:
                raise _error("command", "nothing after '--': give the command to run, e.g. -- python train.py",
                             allowed="a command")
            spec["command"] = words[0] if len(words) == 1 else words

    if get("file"):
        spec = _over_file(read_spec_file(get("file")), spec)
    spec.setdefault("name", suggest_name(spec.get("kind")))
    if spec.get("project") is None:
        spec.pop("project", None)
        named = default_project()
        if named:  # else the client fills in the server's first project the caller may submit to
            spec["project"] = named
    validate_spec(spec)
    # name and project first, as before
    head = {"name": spec.pop("name")}
    if "project" in spec:
        head["project"] = spec.pop("project")
    return {**head, **spec}


def read_spec_file(path: str) -> dict[str, Any]:
    """The workload spec in ``path`` (``-`` is standard input): YAML or JSON, either a spec
    (``name``, ``resources``, ...) or a workload document with a ``spec`` (what
    ``runai describe NAME -o yaml`` prints), whose status and events are ignored."""
    import sys

    import yaml

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                text = f.read()
    except OSError as exc:
        raise _error("file", f"cannot read {path!r}: {exc.strerror}", allowed="a readable YAML or JSON file") from None
    try:
        document = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        raise _error("file", f"{path!r} is not YAML or JSON{at}", allowed="a workload spec in YAML or JSON") from None
    if isinstance(document, dict) and isinstance(document.get("spec"), dict):
        document = document["spec"]
    if not isinstance(document, dict):
        raise _error("file", f"{path!r} holds {type(document).__name__}, not a workload spec (a mapping of "
                     "name, kind, resources, command, ...)", allowed="a workload spec in YAML or JSON")
    return document


def _over_file(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The file's spec with the options given on the command line laid over it; ``resources`` and
    ``environment`` are merged key by key (``-g 1`` changes the GPU and keeps the file's memory)."""
    spec = {**base, **given}
    for key in ("resources", "environment"):
        if isinstance(base.get(key), dict) and key in given:
            spec[key] = {**base[key], **given[key]}
    return spec


def _devices_request(resources: dict[str, Any], devices: str | None, gpu_memory: str | None) -> None:
    """Run:ai's ``--gpu-devices-request N``: N whole GPUs when nothing else asks for a GPU; with a
    portion (``--gpu-portion-request`` / ``-g`` below 1) or ``--gpu-memory-request``, the number of
    devices that each get that share (our ``--gpu-devices``)."""
    if devices is None:
        return
    count = _number(devices)
    if resources.get("gpu_devices") is not None and resources["gpu_devices"] != count:
        raise _error("resources.gpu_devices", f"--gpu-devices {resources['gpu_devices']} and --gpu-devices-request "
                     f"{devices} disagree: give one of them", allowed="one device count")
    gpu = resources.get("gpu")
    if gpu is None and gpu_memory is None:
        resources["gpu"] = count
        return
    if isinstance(gpu, (int, float)) and not isinstance(gpu, bool) and gpu >= 1:
        raise _error("resources.gpu", f"{gpu} whole GPUs and --gpu-devices-request {devices}: for whole GPUs give "
                     "only one of them; --gpu-devices-request goes with a fraction (e.g. --gpu-portion-request "
                     "0.5) or --gpu-memory-request", allowed="a fraction below 1 with --gpu-devices-request")
    resources["gpu_devices"] = count


def validate_spec(spec: dict[str, Any]) -> None:
    """Validate with the model; raise :class:`SubmitArgsError` whose items name field and option."""
    # imported here: the models (pydantic, the kubernetes quantity parser) take a while to import,
    # and only submitting needs them
    from pydantic import ValidationError

    from .models import WorkloadSpec, format_validation_error

    try:
        WorkloadSpec.model_validate(spec)
    except ValidationError as exc:
        errors = []
        for item in format_validation_error(exc):
            field = item.get("field") or ""
            option = FIELD_OPTIONS.get(field) or FIELD_OPTIONS.get(re.split(r"[.\[]", field)[0])
            message = item["message"] + (f" (option {option})" if option else "")
            errors.append({**item, "message": message, "option": option})
        raise SubmitArgsError(errors) from None


def parse_submit(argv: Sequence[str], parser: argparse.ArgumentParser | None = None) -> dict[str, Any]:
    """Parse submit arguments (``-- COMMAND`` included) into a validated spec dict.

    argparse problems (an unknown option, a missing value) exit with status 2
    as argparse does; bad values raise :class:`SubmitArgsError`.
    """
    parser = parser or build_submit_parser()
    options, command = split_command(argv)
    ns = parser.parse_args(options)
    return spec_from_args(ns, command)
