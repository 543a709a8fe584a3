"""`pyvideo demo`: the library's main job end to end on a CPU, narrated.

synthesise a motion dataset -> decode it -> train a width-reduced X3D -> evaluate (multi-view, confusion matrix)
-> convert to the deployable form -> quantize to int8 -> one table of accuracy and per-clip latency.
"""
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch


@dataclass
class DemoSettings:
    num_classes: int = 4
    videos_per_class: int = 80
    video_frames: int = 16
    video_size: int = 32
    epochs: int = 12
    batch_size: int = 8
    lr: float = 0.003
    model: str = "small_x3d"
    num_frames: int = 8
    seed: int = 0
    threads: Optional[int] = None


def choose_threads(requested: Optional[int]) -> int:
    """Two intra-op threads on an idle 2-core machine; one when the CPUs are already busy, because OpenMP
    threads that wait for a descheduled sibling make each op many times slower than a single thread."""
    if requested:
        return requested
    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] >= cores if hasattr(os, "getloadavg") else False
    return 1 if busy else min(2, cores)


def _say(message: str, start: float) -> None:
    print(f"[{time.perf_counter() - start:6.1f}s] {message}", flush=True)


@torch.no_grad()
def accuracy_and_latency(model: Callable, clips: List[torch.Tensor], labels: List[int]):
    """Top-1 over single clips (batch 1, as a deployed model sees them) and the median latency per clip in ms."""
    correct, times = 0, []
    for clip, label in zip(clips, labels):
        begin = time.perf_counter()
        scores = model(clip[None])
        times.append((time.perf_counter() - begin) * 1000)
        correct += int(scores.argmax(dim=1).item() == label)
    return correct / len(labels), statistics.median(times)


def format_table(rows) -> str:
    header = f"{'model':<22} {'val top-1':>9} {'ms / clip':>10} {'speed-up':>9}"
    base = rows[0][2]
    lines = [header, "-" * len(header)]
    lines += [f"{name:<22} {acc * 100:>8.1f}% {ms:>10.2f} {base / ms:>8.2f}x" for name, acc, ms in rows]
    return "\n".join(lines)


def run_demo(settings: DemoSettings = DemoSettings(), out_dir: Optional[str] = None) -> dict:
    from pyvideo.accelerator.deployment import convert_to_deployable_form
    from pyvideo.accelerator.native import compile_native, load_program
    from pyvideo.accelerator.quantization.api import quantize_model
    from pyvideo.synth import CLASS_NAMES, synthesize_action_dataset

    from .classification import train_classifier
    from .clip_dataset import ClipDataset
    from .evaluation import evaluate_multiview
    from .recipes import RunConfig, save_trained_model

    start = time.perf_counter()
    threads = choose_threads(settings.threads)
    torch.set_num_threads(threads)
    out_dir = out_dir or tempfile.mkdtemp(prefix="pyvideo-demo-")
    data_dir = os.path.join(out_dir, "data")
    names = CLASS_NAMES[: settings.num_classes]
    _say(f"pyvideo demo: {settings.num_classes} motion classes ({', '.join(names)}); torch threads: {threads}; "
         f"output in {out_dir}", start)

    files = synthesize_action_dataset(data_dir, num_classes=settings.num_classes,
                                      videos_per_class=settings.videos_per_class, num_frames=settings.video_frames,
                                      height=settings.video_size, width=settings.video_size, seed=settings.seed,
                                      encoder="native")
    _say(f"1/6 synthesised {settings.num_classes * settings.videos_per_class} MP4 videos with the native encoder "
         f"({settings.video_frames} frames, {settings.video_size}x{settings.video_size}); appearance is random, "
         "only the motion tells the classes apart", start)

    config = RunConfig.for_model(settings.model, settings.num_classes, names, num_frames=settings.num_frames,
                                 crop_size=settings.video_size, short_side=settings.video_size)
    train_set = ClipDataset(files["train"], video_path_prefix=data_dir, transform=config.transform("train"),
                            seed=settings.seed)
    val_set = ClipDataset(files["val"], video_path_prefix=data_dir, transform=config.transform("val"))
    _say(f"2/6 decoded {len(train_set)} train / {len(val_set)} val videos with the native decoder into memory", start)

    torch.manual_seed(settings.seed)
    model = config.build_model()
    params = sum(p.numel() for p in model.parameters())
    _say(f"3/6 training {settings.model} ({params / 1e3:.0f}k parameters) on {config.num_frames}x{config.crop_size}x"
         f"{config.crop_size} residual-frame clips for {settings.epochs} epochs (AdamW, warm-up + cosine)", start)
    train_classifier(model, train_set, val_dataset=val_set, epochs=settings.epochs, batch_size=settings.batch_size,
                     lr=settings.lr, optimizer="adamw", weight_decay=1e-4, warmup_epochs=0.5, seed=settings.seed,
                     precise_bn_batches=8, log_dir=os.path.join(out_dir, "run"), progress=False)
    save_trained_model(os.path.join(out_dir, "run", "model.pt"), model, config)

    model.eval()
    confusion_png = os.path.join(out_dir, "confusion_matrix.png")
    multiview = evaluate_multiview(
        model, val_set.raw_samples(), num_frames=config.num_frames,
        sampling_rate=settings.video_frames // config.num_frames, crop_size=config.crop_size,
        num_temporal_clips=1, num_spatial_crops=3, short_side_size=round(config.crop_size * 1.15),
        mean=config.mean, std=config.std, view_transform=config.view_transform(), confusion_png=confusion_png)
    _say(f"4/6 multi-view evaluation (1 clip x 3 crops): top-1 {multiview.metrics['top1'] * 100:.1f}%; "
         f"confusion matrix -> {confusion_png}", start)

    clips = [val_set[i]["video"] for i in range(len(val_set))]
    labels = [val_set[i]["label"] for i in range(len(val_set))]
    deploy = convert_to_deployable_form(model, clips[0][None])
    calibration = [train_set[i]["video"][None] for i in range(0, len(train_set), max(1, len(train_set) // 32))]
    int8 = quantize_model(deploy, calibration)  # calibrated on the torch deploy form, before lowering
    deploy, int8 = compile_native(deploy), compile_native(int8)
    int8_file = os.path.join(out_dir, "run", "model_int8.pvp")
    int8.native_program.save(int8_file)  # what a C/C++ app runs through libvideo.so's C API, no Python needed
    int8.native_program = load_program(int8_file)  # the demo's int8 row runs the model file as written
    _say("5/6 converted to the deployable form (BN folded, activations and residual adds fused), compiled to one "
         "native program on pyvideo's conv3d kernels", start)
    _say(f"6/6 quantized to int8 (post-training, {len(calibration)} calibration clips), native int8 kernels; "
         f"model file -> {int8_file}", start)

    rows = [(name, *accuracy_and_latency(net, clips, labels))
            for name, net in (("eager fp32", model), ("deploy fp32", deploy), ("deploy int8", int8))]
    elapsed = time.perf_counter() - start
    print(format_table(rows))
    from pyvideo import _native  # the built extension (compile_native above needed it too)

    print(_native.int8_kernel_note())
    print(f"total time {elapsed:.0f}s with {threads} thread(s); trained model: {os.path.join(out_dir, 'run', 'model.pt')}")
    return {"rows": rows, "multiview_top1": multiview.metrics["top1"], "seconds": elapsed, "out_dir": out_dir}

