"""bench/ scripts: each answers --help with its usage instead of starting a benchmark (bench/accelerator.py and
bench/copy_bandwidth.py had no options and ran in full, minutes, when asked for help), and mac_throughput's choice of
AVX-512 rows."""
import importlib.util
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench")
# Modules the scripts import, not benchmarks: run directly they do nothing.
HELPERS = {"reference_deploy.py", "two_trees.py"}
SCRIPTS = sorted(name for name in os.listdir(BENCH) if name.endswith(".py") and name not in HELPERS)


def test_every_bench_script_answers_help():
    assert "accelerator.py" in SCRIPTS and "copy_bandwidth.py" in SCRIPTS and "mac_throughput.py" in SCRIPTS

    def run(name):
        # A benchmark run takes minutes; --help takes the time of the imports.
        return name, subprocess.run([sys.executable, os.path.join(BENCH, name), "--help"], capture_output=True,
                                    text=True, timeout=120, cwd=ROOT)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, SCRIPTS))
    for name, result in results:
        assert result.returncode == 0, f"{name}: {result.stderr[-500:]}"
        assert result.stdout.startswith("usage:"), f"{name} did not print its usage first: {result.stdout[:300]!r}"
        assert "machine:" not in result.stdout, f"{name} started a run on --help"


def _mac_throughput():
    spec = importlib.util.spec_from_file_location("mac_throughput", os.path.join(BENCH, "mac_throughput.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("flags, level", [
    ("fpu avx2 fma", 0),                                             # Zen 1-3, Haswell..Skylake client
    ("fpu avx2 fma avx512f avx512bw avx512vl avx512dq", 1),          # Skylake-SP: AVX-512 without VNNI
    ("fpu avx2 fma avx512f avx512bw avx512vl avx512_vnni", 2),       # Cascade Lake on, Zen 4
    ("fpu avx2 fma avx512f avx512_vnni", 1),                         # VNNI without VL / BW: not what the rows need
    ("fpu avx2 fma avx512fx avx512_vnnix", 0),                       # whole words only
])
def test_mac_throughput_avx512_level(flags, level):
    assert _mac_throughput().avx512_level(flags) == level
