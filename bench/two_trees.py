"""Shared plumbing of the benchmarks that compare two builds of pyvideo (bench/depthwise_f32.py,
bench/int8_dynamic.py). Two builds of the native library cannot share a process, so each tree gets worker processes
(PYTHONPATH = the tree's root). Two ways:
- run_rounds: each round starts one worker per tree, alternating base, new, base, new, ...; a worker writes its
  results to a file the caller reads after each run;
- Pair: one long-lived worker per tree, asked in turns (base then new, then new then base, ...) for short samples.
  When the machine's speed drifts (a shared VM's did by up to 2x within minutes), whole-worker rounds give one tree
  the fast minutes and the other the slow ones; samples a fraction of a second apart see the same machine.
Not a benchmark itself: run directly (as `make bench` does) it does nothing.
"""
import argparse
import json
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


def best_of_ms(run, runs: int = 3) -> float:
    """The fastest of `runs` calls of run(), in milliseconds (a Pair worker's sample)."""
    import time

    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


class Pair:
    """Long-lived workers of both trees: `script *worker_args --serve` prints its pyvideo package's __init__.py as a
    JSON line when it is ready, then reads one request per line on stdin and answers one JSON line per request."""

    def __init__(self, script: str, worker_args, args):
        self.trees = {"base": os.path.abspath(args.base), "new": os.path.abspath(args.new)}
        if self.trees["base"] == self.trees["new"]:
            print("base and new are the same tree (as under `make bench`): the ratios show this machine's noise floor")
        self.workers = {}
        for tree, root in self.trees.items():
            command = [sys.executable, os.path.abspath(script), *worker_args, "--serve"]
            self.workers[tree] = subprocess.Popen(command, env=dict(os.environ, PYTHONPATH=root), cwd=root,
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for tree, root in self.trees.items():
            package = self._answer(tree)  # ready: the worker's pyvideo/__init__.py
            if not os.path.abspath(package).startswith(root + os.sep):
                raise RuntimeError(f"the {tree} worker imported pyvideo from {package}, not from {root}")

    def _answer(self, tree: str):
        line = self.workers[tree].stdout.readline()
        if not line:
            raise RuntimeError(f"the {tree} worker ({self.trees[tree]}) exited")
        return json.loads(line)

    def ask(self, tree: str, request: str):
        self.workers[tree].stdin.write(request + "\n")
        self.workers[tree].stdin.flush()
        return self._answer(tree)

    def turns(self, request: str, rounds: int):
        """{tree: [answer per round]}, the trees taking turns in alternating order."""
        answers = {tree: [] for tree in self.trees}
        for r in range(rounds):
            for tree in (("base", "new") if r % 2 == 0 else ("new", "base")):
                answers[tree].append(self.ask(tree, request))
        return answers

    def close(self):
        for worker in self.workers.values():
            worker.stdin.close()
            worker.wait()
