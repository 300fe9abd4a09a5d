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
    args = parser.parse_args(argv)

    if args.command == "scenarios":
        from .scenarios import run_file

        json.dump(run_file(args.file), sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.command == "fairshare":
        from .fairshare_cases import run_file

        json.dump(run_file(args.file), sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.command == "demo":
        from .demo import run_demo

        run_demo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
