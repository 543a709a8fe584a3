"""Training throughput (clips/s, data + model) for X3D-XS and Slow-R50 on CPU with 0, 1, 2 DataLoader workers,
and the timings of `pyvideo demo`.

Every step decodes its videos from MP4 (no cache), runs the Kinetics-style train transform, then forward, backward
and an SGD step, so the number is what a user's training loop gets. One warm-up step is not timed.

    .venv/bin/python bench/train.py [--steps 4] [--skip-demo]
"""
import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyvideo.benchmarks import machine  # noqa: E402
from pyvideo.synth import synthesize_action_dataset  # noqa: E402
from pyvideo.tasks.clip_dataset import ClipDataset  # noqa: E402
from pyvideo.tasks.demo import DemoSettings, choose_threads, run_demo  # noqa: E402
from pyvideo.tasks.recipes import RunConfig  # noqa: E402

# (recipe, frames, crop, short side, batch): X3D-XS at its published input; Slow-R50 at a reduced 160 crop
# (224 would take minutes per configuration on a 2-core CPU).
MODELS = (("x3d_xs", 4, 160, 160, 4), ("slow_r50", 8, 160, 160, 2))


def clips_per_second(config: RunConfig, data_dir: str, files: dict, batch: int, workers: int, steps: int) -> float:
    dataset = ClipDataset(files["train"], video_path_prefix=data_dir, transform=config.transform("train"), cache=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=False, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = config.build_model().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batches = iter(loader)
    start = None
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()
        sample = next(batches)
        loss = torch.nn.functional.cross_entropy(model(sample["video"]), sample["label"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per configuration")
    parser.add_argument("--threads", type=int, help="torch threads (default: the demo's choice)")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    threads = choose_threads(args.threads)
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {threads} intra-op thread(s), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as data_dir:
        files = synthesize_action_dataset(data_dir, num_classes=4, videos_per_class=8, num_frames=32, height=176,
                                          width=176, fps=15.0)
        print(f"{'model':<10} {'clip':>12} {'batch':>5} {'workers':>7} {'clips/s':>8}")
        for name, frames, crop, short_side, batch in MODELS:
            config = RunConfig.for_model(name, 4, num_frames=frames, crop_size=crop, short_side=short_side)
            for workers in (0, 1, 2):
                rate = clips_per_second(config, data_dir, files, batch, workers, args.steps)
                print(f"{name:<10} {f'{frames}x{crop}x{crop}':>12} {batch:>5} {workers:>7} {rate:>8.2f}", flush=True)
    if not args.skip_demo:
        print("\npyvideo demo (default settings):")
        result = run_demo(DemoSettings(threads=args.threads))
        print(f"demo wall time: {result['seconds']:.0f}s")


if __name__ == "__main__":
    main()
