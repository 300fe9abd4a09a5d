"""``python -m jupyter_runai.sim``: run scheduling scenarios, fair-share cases or a demo."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jupyter_runai.sim",
        description="Run the jupyter-runai scheduling engine on scenario files.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("scenarios", help="run scheduling scenarios (KAI-Scheduler test form) and print results as JSON")
    p.add_argument("file", help="JSON file with a list of scenarios")
    p = sub.add_parser("fairshare", help="run fair-share division cases and print results as JSON")
    p.add_argument("file", help="JSON file with a list of fair-share cases")
    sub.add_parser("demo", help="print a short demonstration of the engine")
    p = sub.add_parser("fgd", help="GPU packing on the FGD paper's protocol (Alibaba openb trace)")
    p.add_argument("--trace", default="default", help="pod list: default, gpushare100, cpu050, gpuspec33, ...")
    p.add_argument("--seeds", type=int, default=10, help="number of seeds, from 42 (default 10)")
    p.add_argument("--policy", action="append", default=None,
                   help="random, bestfit, packing, fgd or default (repeatable; default: all)")
    p.add_argument("--limit", type=int, default=None, help="run on a cut of this many nodes (and as many pods pro rata)")
    p.add_argument("--trace-dir", default=None, help="folder with the openb CSVs (default: shared/traces/alibaba-gpu-v2023)")
    p.add_argument("--ties", choices=("first", "random"), default="first",
                   help="ties between equally scored nodes: first in the run's (seeded) node order, or drawn per pod")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", default=None, help="write the allocation plot (PNG) here; needs matplotlib")
    p.add_argument("--quiet", action="store_true", help="no per-seed progress on stderr")
    p = sub.add_parser("replay", help="time-based replay of the Philly trace (JCT, queueing delay, utilization, fairness)")
    p.add_argument("--jobs", type=int, default=50_000, help="the first N jobs by submit time (default 50,000)")
    p.add_argument("--gpus", type=int, default=768, help="GPUs in the cluster (default 768)")
    p.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node (default 8)")
    p.add_argument("--policy", action="append", default=None,
                   help="fifo, ours or ours-no-overquota (repeatable; default: all)")
    p.add_argument("--checkpoint", type=float, default=1800.0, help="seconds of progress between checkpoints")
    p.add_argument("--period", type=float, default=60.0, help="least simulated seconds between two cycles (0: every event)")
    p.add_argument("--workers", type=int, default=1, help="replay the policies in this many processes at once")
    p.add_argument("--reclaim-min-runtime", type=float, default=0.0,
                   help="seconds a job runs before another project may reclaim it (default 0)")
    p.add_argument("--preempt-min-runtime", type=float, default=0.0,
                   help="seconds a job runs before a higher priority may preempt it (default 0)")
    p.add_argument("--trace", default=None, help="the Philly CSV or its folder (default: shared/traces/philly-2017)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", default=None, help="write the utilization plot (PNG) here; needs matplotlib")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)

    if args.command == "scenarios":
        from .scenarios import run_file

        json.dump(run_file(args.file), sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.command == "fairshare":
        from .fairshare_cases import run_file

        json.dump(run_file(args.file), sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.command == "fgd":
        from . import fgd

        policies = args.policy or list(fgd.POLICIES)
        bad = [x for x in policies if x not in fgd.POLICIES]
        if bad:
            parser.error(f"unknown policy {bad[0]!r}; allowed: {', '.join(fgd.POLICIES)}")
        progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
        report = fgd.benchmark(args.trace, args.seeds, policies, args.limit, args.trace_dir, progress=progress,
                               ties=args.ties)
        if args.plot:
            if not fgd.plot(report, args.trace, args.plot, args.trace_dir):
                print("matplotlib is not installed: no plot written", file=sys.stderr)
        if args.json:
            json.dump(report, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print(fgd.format_table(args.trace, report))
    elif args.command == "replay":
        from . import replay

        policies = args.policy or list(replay.POLICIES)
        bad = [x for x in policies if x not in replay.POLICIES]
        if bad:
            parser.error(f"unknown policy {bad[0]!r}; allowed: {', '.join(replay.POLICIES)}")
        progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
        report = replay.benchmark(args.jobs, args.gpus, args.gpus_per_node, policies, args.checkpoint, args.trace,
                                  progress=progress, period=args.period, workers=args.workers,
                                  reclaim_min_runtime=args.reclaim_min_runtime,
                                  preempt_min_runtime=args.preempt_min_runtime)
        if args.plot and not replay.plot(report, args.plot):
            print("matplotlib is not installed: no plot written", file=sys.stderr)
        if args.json:
            json.dump(report, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print(replay.format_table(report))
    elif args.command == "demo":
        from .demo import run_demo

        run_demo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
