"""Run a pytest selection again and again in two processes while other processes keep every core busy.

    python -m tools.under_load --runs 10 tests/security/test_signed_actors.py

Load changes how a live worker's tasks are grouped, which is where replay faults hide (decision 0012).
Prints one line a run and the count of failing runs; exits 1 when any run failed. Random exploration:
`make stress-signed`, never part of `make test`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time


def _burn(until: float) -> None:
    while time.monotonic() < until:
        sum(i * i for i in range(10_000))


def run_once(selection: list[str], number: int) -> bool:
    until = time.monotonic() + 600
    burners = [multiprocessing.Process(target=_burn, args=(until,), daemon=True) for _ in range(os.cpu_count() or 2)]
    for burner in burners:
        burner.start()
    try:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", *selection],
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        for burner in burners:
            burner.terminate()
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"run {number}: {summary} ({time.monotonic() - started:.0f} s)", flush=True)
    if done.returncode != 0:
        failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR", "E "))]
        print("\n".join(failed[:10]), flush=True)
    return done.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.under_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("selection", nargs="+", help="what pytest runs, e.g. tests/security/test_signed_actors.py")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1 (got {args.runs})")
    failures = sum(not run_once(args.selection, number) for number in range(1, args.runs + 1))
    print(f"{failures} of {args.runs} runs failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
