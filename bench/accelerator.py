"""X3D inference on CPU, batch 1, 1 and 2 threads: vanilla PyTorch eager vs the reference's (PyTorchVideo's) 2-D
deploy form (torch eager, bench/reference_deploy.py), pyvideo's deploy form (torch eager), torch.compile, ONNX
Runtime, and pyvideo's native fp32 and int8 kernels (per-layer ops, and compile_native programs). Prints a table of milliseconds and speed-ups over vanilla eager,
the int8/fp32 ratios, the machine's measured peaks (fp32 and int8 matmuls, a large copy), and what fraction of them
each native kernel kind reaches on EfficientX3d-XS's layers (fp32 steps against the fp32 matmul, int8 steps against
the int8 one), and each model's fp32 roofline twice: its multiply-adds at the measured fp32 matmul peak (a practical
ceiling: on x86, where eager's convs are oneDNN's, it can lie under the issue's 5x over vanilla eager), and at one
core's FMA peak times the threads (bench/mac_throughput.py's fma chains: the hardware's bound, which a matmul does
not reach; torch's reached 75-86% of it on a Zen 4), each with the largest fp32 speed-up over vanilla eager it allows.
Every variant is checked against vanilla eager before timing. The weights are random
(int8 accuracy on real clips: bench/int8_agreement.py). Run once:  .venv/bin/python bench/accelerator.py
[--models EfficientX3d-XS x3d_s ...] [--threads 1 2] (the step fractions are those of the first
chosen model in the order EfficientX3d-XS, EfficientX3d-S, x3d_xs, x3d_s, whatever the order given)
"""
import argparse
import copy
import io
import statistics
import time
import warnings
from collections import defaultdict

import torch

from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.native import compile_native, lower_quantized_to_native, lower_to_native
from pyvideo.accelerator.quantization import quantize_model
from pyvideo.benchmarks.timing import peak_copy_gbps, peak_int8_matmul_gops, peak_matmul_gflops
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d
from pyvideo.models.hub import x3d_s, x3d_xs
from pyvideo.benchmarks import machine

from reference_deploy import check_equivalent, convert_reference_style
import mac_throughput

MODELS = [
    ("EfficientX3d-XS", lambda: create_x3d(expansion="XS"), (1, 3, 4, 160, 160)),
    ("EfficientX3d-S", lambda: create_x3d(expansion="S"), (1, 3, 13, 160, 160)),
    ("x3d_xs (transmuted)", x3d_xs, (1, 3, 4, 160, 160)),
    ("x3d_s (transmuted)", x3d_s, (1, 3, 13, 160, 160)),
]


# Each variant's turn: a pause, an untimed call, then the timed call. Thread pools keep spinning for a while after a
# run: measured at 2 threads, pyvideo's int8 program took 16.7 ms (median) right after an ONNX Runtime call against
# 9.0 ms after a pause (ORT with spinning disabled in between: 10.8 ms), so back to back each variant was timed
# against its predecessor's pool. The untimed call after the pause brings the caches and the thread pool back.
PAUSE_SECONDS = 0.05


def time_interleaved_ms(variants, rounds: int = 5) -> dict:
    """Median milliseconds per variant; the variants take turns within each round, so load changes on the shared
    machine hit all of them alike; each turn is a pause (PAUSE_SECONDS, so that no variant runs while the previous
    one's threads still spin), an untimed call and the timed one. A variant that fails (or is None: unavailable) gets
    NaN."""
    runnable, times = {}, {label: float("nan") for label in variants}
    with torch.no_grad():
        for label, fn in variants.items():
            if fn is None:
                continue
            try:
                fn()  # warm-up (torch.compile compiles here)
                runnable[label] = fn
            except Exception as error:
                print(f"  {label} failed: {type(error).__name__}: {str(error)[:100]}")
        samples = {label: [] for label in runnable}
        for _ in range(rounds):
            for label, fn in runnable.items():
                time.sleep(PAUSE_SECONDS)
                fn()
                start = time.perf_counter()
                fn()
                samples[label].append(time.perf_counter() - start)
    times.update({label: 1e3 * statistics.median(values) for label, values in samples.items()})
    return times


def onnx_runner(model, x):
    """An ONNX Runtime CPU session for `model`, or None when export or onnxruntime is unavailable."""
    try:
        import onnxruntime as ort

        buffer = io.BytesIO()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17)
        report_new_warnings(caught)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        feed = {name: x.numpy()}
        return lambda: session.run(None, feed)
    except Exception as error:  # benchmark-only dependency: report and go on
        print(f"  onnxruntime unavailable for this model: {type(error).__name__}: {str(error)[:80]}")
        return None


_SEEN_WARNINGS = set()


def report_new_warnings(caught) -> None:
    """Print each distinct export warning once per run (first line only), not once per model."""
    for warning in caught:
        line = f"{warning.category.__name__}: {str(warning.message).splitlines()[0][:160]}"
        if line not in _SEEN_WARNINGS:
            _SEEN_WARNINGS.add(line)
            print(f"  (onnx export, shown once) {line}")


def build_variants(builder, shape):
    torch.manual_seed(0)
    vanilla = builder().eval()
    x = torch.randn(*shape)
    target = copy.deepcopy(vanilla)
    if "Efficient" not in type(target).__name__:  # plain nn.Conv3d models go through the transmuter
        transmute_model(target)
    deploy = convert_to_deployable_form(target, x).eval()
    reference = convert_reference_style(target, x)  # frozen to x's shape, as the reference's deploy form is
    print(f"  reference-style deploy (2-D) vs vanilla rel err {check_equivalent(vanilla, reference, x):.2e}")
    native_fp32 = lower_to_native(deploy)
    int8 = quantize_model(deploy, [torch.randn(*shape) for _ in range(2)])
    native_int8 = lower_quantized_to_native(int8)
    program_fp32, program_int8 = compile_native(deploy), compile_native(int8)
    # the cost bound of dynamic (per-clip) activation ranges: every eligible tensor dynamic (quantize_model's
    # dynamic_ranges=True picks only those whose calibration scale varies by more than 5x)
    program_dynamic = compile_native(quantize_model(deploy, [torch.randn(*shape) for _ in range(2)], dynamic_ranges=0))
    with torch.no_grad():
        fp32_out, int8_out = program_fp32(x), program_int8(x)
        ref = vanilla(x)
        same_ops = torch.equal(native_int8(x), int8_out)
    print(f"  native program fp32 vs vanilla rel err {float((fp32_out - ref).abs().max() / ref.abs().max()):.2e}; "
          f"int8 program equals the int8 per-layer ops: {same_ops}; int8 vs fp32 rel L2 "
          f"{float((int8_out - fp32_out).norm() / fp32_out.norm()):.3f} (random weights and clips: agreement on real "
          "clips is bench/int8_agreement.py's)")
    compiled = torch.compile(vanilla)
    variants = {
        "vanilla eager": lambda: vanilla(x),
        "reference 2-D deploy": lambda: reference(x),
        "pyvideo deploy eager": lambda: deploy(x),
        "torch.compile": lambda: compiled(x),
        "onnxruntime": onnx_runner(vanilla, x),
        "fp32 per-layer ops": lambda: native_fp32(x),
        "int8 per-layer ops": lambda: native_int8(x),
        "pyvideo fp32": lambda: program_fp32(x),
        "pyvideo int8": lambda: program_int8(x),
        "int8 all dynamic": lambda: program_dynamic(x),
    }
    return variants, (program_fp32, program_int8), x, program_flops(program_fp32, x)


def program_flops(compiled, x) -> int:
    """Floating-point operations (multiply-adds count two) of one run of a compiled native program on `x`, from its
    step profile (csrc/runtime/program.cpp counts each conv's multiply-adds; fused pairs count both convs)."""
    program = compiled.native_program.program
    program.set_profiling(True)
    try:
        with torch.no_grad():
            compiled(x)
        return sum(2 * step["macs"] for step in program.last_profile())
    finally:
        program.set_profiling(False)


def kernel_fractions(compiled, x, peak_gflops, peak_gbps, unit="GFLOP/s", fma_peak=None):
    """Per step kind of a compiled native program (timed inside C++, best of 5 runs): GFLOP/s (GOP/s for int8 steps:
    `unit`) against the matmul peak `peak_gflops` (None: no fraction) and, given `fma_peak`, against one core's FMA
    peak (fp32 steps), and the bytes each step must move (input + output + weights) per second against the copy
    peak."""
    program = compiled.native_program.program
    program.set_profiling(True)
    best = None
    with torch.no_grad():
        for _ in range(5):
            compiled(x)
            profile = program.last_profile()
            total = sum(step["seconds"] for step in profile)
            if best is None or total < best[0]:
                best = (total, profile)
    program.set_profiling(False)
    stats = defaultdict(lambda: [0.0, 0, 0, 0])  # seconds, flops, bytes, steps
    for step in best[1]:
        element = 1 if step["kind"].startswith("quantized") else 4
        numel = lambda shape: shape[0] * shape[1] * shape[2] * shape[3] * shape[4]  # noqa: E731
        if step["kind"].startswith("conv/pointwise>depthwise"):
            # A fused pair (csrc/runtime/conv_depthwise.cpp): macs = the pointwise conv's over every input
            # position plus the depthwise conv's over every output position; it moves its input, its output and
            # both weights (the pointwise output never goes to memory).
            ci, c = step["input_shape"][4], step["output_shape"][4]
            pointwise = numel(step["input_shape"]) * c
            taps = (step["macs"] - pointwise) // max(1, numel(step["output_shape"]))
            weights = ci * c + taps * c
        elif ">depthwise" in step["kind"]:
            # A fused dense conv (the stem) and depthwise conv: the macs do not tell the two kernels' sizes apart;
            # their weights (a few KB) are negligible next to the input and output the step moves.
            weights = 0
        else:
            weights = step["macs"] // max(1, numel(step["output_shape"]) // step["output_shape"][4])
        entry = stats[step["kind"]]
        entry[0] += step["seconds"]
        entry[1] += 2 * step["macs"]
        entry[2] += element * (numel(step["input_shape"]) + numel(step["output_shape"]) + weights)
        entry[3] += 1
    print(f"  whole program {best[0] * 1e3:.2f} ms")
    for kind, (seconds, flops, moved, steps) in sorted(stats.items(), key=lambda item: -item[1][0]):
        gflops, gbps = flops / seconds / 1e9, moved / seconds / 1e9
        fraction = f" ({100 * gflops / peak_gflops:5.1f}% of peak)" if peak_gflops else " " * 18
        if fma_peak:
            fraction += f" ({100 * gflops / fma_peak:5.1f}% of FMA)"
        compute = f"{gflops:6.1f} {unit:7s}{fraction}" if flops else " " * (32 + (16 if fma_peak else 0))
        print(f"  {kind:30s} {steps:3d} steps {seconds * 1e3:7.2f} ms  {compute}  "
              f"{gbps:6.1f} GB/s ({100 * gbps / peak_gbps:5.1f}% of copy peak)")


def main():
    names = [name.split()[0] for name, _, _ in MODELS]  # "x3d_xs (transmuted)" is asked for as x3d_xs
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=names, choices=names, metavar="MODEL",
                        help=f"models to run, of: {', '.join(names)} (default: all)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default: 1 2)")
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    print(f"torch {torch.__version__}, native ISA {__import__('pyvideo._native', fromlist=['x']).native().get_isa()}, "
          f"int8 dense variant {__import__('pyvideo._native', fromlist=['x']).native().qconv3d_variant()}")
    fp32_peaks = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        int8_peak = peak_int8_matmul_gops()
        fp32_peaks[threads] = peak_matmul_gflops()
        print(f"threads={threads}: peak matmul {fp32_peaks[threads]:.1f} GFLOP/s fp32, "
              + (f"{int8_peak:.1f} GOP/s int8 (torch._int_mm)" if int8_peak else "no int8 matmul in this torch")
              + f", copy {peak_copy_gbps():.1f} GB/s")
    fma_peak = mac_throughput.fma_peak_gflops()  # one core; None where it cannot be measured (no C compiler, not x86)
    print(f"fp32 FMA peak of one core (bench/mac_throughput.py's fma chains): {fma_peak:.1f} GFLOP/s" if fma_peak
          else "fp32 FMA peak: not measured here (bench/mac_throughput.py needs x86 AVX2 + FMA and a C compiler)")
    rows, flops = [], {}
    first_native = None  # the first model's programs and clip: their step fractions end the report
    for name, builder, shape in MODELS:
        if name.split()[0] not in args.models:
            continue
        print(f"== {name} {shape}")
        variants, programs, x, flops[name] = build_variants(builder, shape)
        if first_native is None:
            first_native = (name, programs, x)
        for threads in args.threads:
            torch.set_num_threads(threads)
            rows.append((name, threads, time_interleaved_ms(variants)))
    labels = list(rows[0][2])
    print("\nmilliseconds (speed-up over vanilla eager), batch 1; 'pyvideo fp32/int8' = compile_native programs")
    print(f"{'model':20s} thr " + " ".join(f"{label:>21s}" for label in labels))
    for name, threads, times in rows:
        base = times["vanilla eager"]
        cells = [f"{times[label]:7.1f} ({base / times[label]:5.2f}x)" for label in labels]
        print(f"{name:20s} {threads:3d} " + " ".join(f"{c:>21s}" for c in cells))
    print()
    for name, threads, times in rows:
        print(f"{name} thr={threads}: int8 / fp32 speed-up {times['pyvideo fp32'] / times['pyvideo int8']:.2f}x "
              f"(programs), {times['fp32 per-layer ops'] / times['int8 per-layer ops']:.2f}x (per-layer ops); "
              f"pyvideo fp32 vs onnxruntime {times['onnxruntime'] / times['pyvideo fp32']:.2f}x, "
              f"vs torch.compile {times['torch.compile'] / times['pyvideo fp32']:.2f}x; int8 with every eligible range "
              f"dynamic / fp32 {times['pyvideo fp32'] / times['int8 all dynamic']:.2f}x")
    print("\nfp32 roofline: the network's multiply-adds at the fp32 matmul peak measured above; 'ceiling' = vanilla eager "
          "/ that time, the largest speed-up any fp32 implementation could reach here")
    for name, threads, times in rows:
        bound_ms = 1e3 * flops[name] / (fp32_peaks[threads] * 1e9)
        print(f"{name} thr={threads}: {flops[name] / 1e9:.2f} GFLOP per clip -> {bound_ms:.1f} ms at "
              f"{fp32_peaks[threads]:.0f} GFLOP/s; pyvideo fp32 at {100 * bound_ms / times['pyvideo fp32']:.0f}% of it, "
              f"vanilla eager at {100 * bound_ms / times['vanilla eager']:.0f}%; ceiling "
              f"{times['vanilla eager'] / bound_ms:.2f}x (pyvideo fp32 reaches "
              f"{times['vanilla eager'] / times['pyvideo fp32']:.2f}x)")
    if fma_peak:
        print("the same at the FMA peak (one core per thread; a matmul does not reach it: torch's reached "
              f"{100 * fp32_peaks[args.threads[0]] / (fma_peak * args.threads[0]):.0f}% of it at "
              f"{args.threads[0]} thread(s)):")
        for name, threads, times in rows:
            bound_ms = 1e3 * flops[name] / (fma_peak * threads * 1e9)
            print(f"{name} thr={threads}: {bound_ms:.1f} ms at {fma_peak * threads:.0f} GFLOP/s; pyvideo fp32 at "
                  f"{100 * bound_ms / times['pyvideo fp32']:.0f}% of it; ceiling {times['vanilla eager'] / bound_ms:.2f}x")
    torch.set_num_threads(1)
    peak_gflops, peak_gops, peak_gbps = peak_matmul_gflops(), peak_int8_matmul_gops(), peak_copy_gbps()
    first, programs, x = first_native
    fma = f", {fma_peak:.1f} GFLOP/s FMA" if fma_peak else ""
    print(f"\nnative fp32 steps on {first}, 1 thread (peaks {peak_gflops:.1f} GFLOP/s fp32 matmul{fma}, "
          f"{peak_gbps:.1f} GB/s copy):")
    kernel_fractions(programs[0], x, peak_gflops, peak_gbps, fma_peak=fma_peak)
    int8_peak = f"{peak_gops:.1f} GOP/s int8 matmul (torch._int_mm)" if peak_gops else "no int8 matmul peak"
    print(f"\nnative int8 steps on {first}, 1 thread (peaks {int8_peak}, {peak_gbps:.1f} GB/s copy):")
    kernel_fractions(programs[1], x, peak_gops, peak_gbps, unit="GOP/s")


if __name__ == "__main__":
    main()
