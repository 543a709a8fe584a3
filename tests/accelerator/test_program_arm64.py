"""Deployment to ARM64: model files written here (x86, by Python) run on an ARM64 build of libvideo through the C API
alone (tests/cpp/run_program.c under qemu-aarch64), as an app on a phone would run them, and give this machine's
results. Two emulated CPUs: `max` (NEON with dotprod and i8mm: the int8 kernels' fastest paths) and `cortex-a53`
(plain ARMv8.0 NEON: the dispatch fallbacks). Needs the cross build of `make test-arm64`; skipped without it."""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from pyvideo.accelerator.deployment import convert_to_deployable_form
from pyvideo.accelerator.native import compile_native
from pyvideo.accelerator.quantization import quantize_model
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "build-arm64" / "run_program"
SYSROOT = Path("/usr/aarch64-linux-gnu")
QEMU = shutil.which("qemu-aarch64")

pytestmark = [
    pytest.mark.skipif(not RUNNER.exists(), reason=f"no ARM64 build at {RUNNER} (`make test-arm64` builds it)"),
    pytest.mark.skipif(QEMU is None or not SYSROOT.exists(), reason="qemu-aarch64 or the aarch64 sysroot is missing"),
    pytest.mark.usefixtures("one_torch_thread"),
]

SHAPE = (2, 3, 4, 48, 40)  # batch 2, H != W: the program is shape-agnostic on ARM as well


@pytest.fixture(scope="module")
def programs():
    torch.manual_seed(0)
    deploy = convert_to_deployable_form(create_x3d(expansion="XS").eval(), torch.randn(1, 3, 4, 48, 40)).eval()
    calibration = [torch.randn(*SHAPE) for _ in range(3)]
    return {
        "fp32": compile_native(deploy),
        "int8": compile_native(quantize_model(deploy, calibration, dynamic_ranges=False)),
        "int8 dynamic": compile_native(quantize_model(deploy, calibration, dynamic_ranges=0)),
    }


def run_model_file(model: Path, x: torch.Tensor, cpu: str, tmp_path: Path, threads: int = 1):
    """run_program on the ARM64 build under qemu: (the finished process, the path of its output file)."""
    inputs, outputs = tmp_path / "input.bin", tmp_path / "output.bin"
    x.permute(0, 2, 3, 4, 1).contiguous().numpy().tofile(inputs)
    n, c, t, h, w = x.shape
    result = subprocess.run(
        [QEMU, "-L", str(SYSROOT), str(RUNNER), str(model), str(inputs), str(outputs), *map(str, (n, t, h, w, c)),
         str(threads)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "QEMU_CPU": cpu})
    return result, outputs


def run_on_arm64(program, x: torch.Tensor, cpu: str, tmp_path: Path, threads: int = 1):
    model = tmp_path / "model.pvm"
    program.native_program.save(model)
    return run_model_file(model, x, cpu, tmp_path, threads)


@pytest.mark.parametrize("cpu", ["max", "cortex-a53"])
@pytest.mark.parametrize("kind", ["fp32", "int8", "int8 dynamic"])
def test_model_file_runs_on_arm64_as_here(programs, kind, cpu, tmp_path):
    x = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        here = programs[kind](x)
    result, outputs = run_on_arm64(programs[kind], x, cpu, tmp_path, threads=2)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["shape", "2", "1", "1", "1", "400", "dtype", "0", "layout", "2"]
    there = torch.from_numpy(np.fromfile(outputs, dtype=np.float32)).reshape(here.shape)
    if kind == "fp32":  # other kernels, other summation order (observed: ~1e-7 relative)
        assert float((there - here).abs().max()) <= 1e-5 * float(here.abs().max())
    else:  # int8 arithmetic is specified exactly and every ISA's kernels equal the scalar reference: the same bits
        assert torch.equal(there, here)


def test_arm64_runner_reports_a_corrupt_model_file(programs, tmp_path):
    model = tmp_path / "model.pvm"
    programs["fp32"].native_program.save(model)
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])  # truncated
    result, _ = run_model_file(model, torch.randn(1, 3, 4, 48, 40), "max", tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("run_program: program file") and "truncated" in result.stderr
