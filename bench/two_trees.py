"""Shared plumbing of the benchmarks that compare two builds of pyvideo (bench/depthwise_f32.py,
bench/int8_dynamic.py). Two builds of the native library cannot share a process, so each round runs one worker
process per tree (PYTHONPATH = the tree's root), alternating base, new, base, new, ...; a worker writes its results
to a file the caller reads after each run. Not a benchmark itself: run directly (as `make bench` does) it does nothing.
"""
import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def add_arguments(parser, rounds: int) -> None:
    parser.add_argument("--base", default=ROOT, help="repository root of the base build (default: this one)")
    parser.add_argument("--new", default=ROOT, help="repository root of the new build (default: this one)")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--worker", help=argparse.SUPPRESS)


def run_rounds(script: str, worker_args, args, on_result, cwd=None) -> None:
    """Runs `script *worker_args --worker OUT` once per tree and round (in `cwd`, default a scratch directory);
    on_result(tree, OUT) reads each result before the next run overwrites it."""
    trees = {"base": os.path.abspath(args.base), "new": os.path.abspath(args.new)}
    if trees["base"] == trees["new"]:
        print("base and new are the same tree (as under `make bench`): the ratios show this machine's noise floor")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for tree, root in trees.items():
                out = os.path.join(tmp, f"{tree}.json")
                command = [sys.executable, os.path.abspath(script), *worker_args, "--worker", out]
                subprocess.run(command, env=dict(os.environ, PYTHONPATH=root), check=True, cwd=cwd or tmp)
                on_result(tree, out)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
