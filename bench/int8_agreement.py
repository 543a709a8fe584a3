#!/usr/bin/env python
"""int8 vs fp32 top-1 agreement of EfficientX3d-XS on held-out REAL clips (4x160x160, as in bench/accelerator.py).

No published checkpoint can be downloaded here, so the script first trains EfficientX3d-XS briefly on a task made
from the real videos in ../shared/data/videos (beside the checkout): each video is cut into SEGMENTS equal parts and every
(video, segment) is a class. The middle 40% of each segment's frames is held out; training and calibration clips
come only from the two outer parts (no frame of a held-out clip is ever trained on or calibrated with).
Held-out clips: several start times x 3 spatial crops (left/centre/right) x 2 flips per class.
Preprocessing: decode (pyvideo.data.encoded_video.EncodedVideo), short-side scale, crop, /255, normalise with the
Kinetics mean/std (0.45, 0.225), 4 frames uniformly from a WINDOW-frame window. Evaluation and calibration use
4x160x160 crops of frames scaled to short side 160 (the benchmark's shape); training, to fit a few minutes on a
shared 2-core machine, uses 4x64x64 crops of frames scaled to short side 96.

Then for the trained model and for a random-init one: deploy form (convert_to_deployable_form), native fp32
(lower_to_native), post-training int8 with calibration clips (quantize_model: static per-tensor min/max; static
ranges with per-channel squeeze-excitation outputs and bias correction; the defaults, which add dynamic per-clip
ranges for the tensors whose calibration batches differ in scale by more than 3x, with the min/max and percentile
observers; every eligible range dynamic) run as native int8 programs (compile_native); when PTQ stays below 99%
agreement, QAT aimed at agreement (--qat-steps: PTQ ranges frozen, weights fine-tuned to match the fp32 logits).
Prints top-1 agreement, logit errors and the margins of every disagreement (pyvideo.accelerator.quantization.
agreement), plus held-out accuracy against the task labels.

    .venv/bin/python bench/int8_agreement.py [--train-seconds 220] [--threads 1] [--qat-steps 40] [--always-qat] [--seed 0]
        [--train-steps N] [--save-trained PATH | --load-trained PATH] [--thresholds 3,2,1.5] [--frames 13] [--quick]

--thresholds adds a PTQ row per listed dynamic_ranges threshold (a tensor gets per-clip ranges where its calibration
batches' scales differ by more than that factor; the defaults use 3, 0 makes every eligible range dynamic): with
--load-trained, a sweep of the threshold on one trained model in a few minutes.
--frames 13 evaluates and calibrates on 13-frame clips (X3D-S's shape, 13x160x160): EfficientX3d XS and S are the
same network (they differ only in the clip), so the XS weights trained on 4-frame clips run as an S; the 13 frames are
sampled uniformly from the same 8-frame windows (frames repeat), so only the clip shape and the activations' extent
change, not the windows held out.
"""
import argparse
import copy
import glob
import math
import os
import time

import torch
import torch.nn.functional as F

from pyvideo.accelerator.deployable import FusedConv3d
from pyvideo.accelerator.deployment import convert_to_deployable_form
from pyvideo.accelerator.native import compile_native, lower_quantized_to_native, lower_to_native
from pyvideo.accelerator.quantization import calibrate, convert_qat, freeze_observers, prepare_qat, quantize_model
from pyvideo.accelerator.quantization import QuantizedConv3d
from pyvideo.accelerator.quantization.agreement import compare_logits
from pyvideo.accelerator.quantization.qparams import dequantize
from pyvideo.data.encoded_video import EncodedVideo
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d
from pyvideo.transforms import Normalize
from pyvideo.transforms.functional import short_side_scale, uniform_crop, uniform_temporal_subsample
from pyvideo.benchmarks import machine

# the real videos beside the checkout (../shared/data, see its README); absent in a user's clone
VIDEO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "videos")
SEGMENTS = 4  # classes per video
HELD_OUT = (0.3, 0.7)  # held-out part of each segment (fractions); the two outer parts train and calibrate
WINDOW = 8  # frames spanned by one clip (4 sampled uniformly)
FRAMES, SIZE = 4, 160  # evaluation and calibration clips: 4x160x160 crops of frames scaled to short side 160
TRAIN_SHORT_SIDE, TRAIN_SIZE = 96, 64  # training clips: cheaper 64x64 crops of frames scaled to short side 96
HELD_OUT_STARTS = 3  # start times per class in its held-out range, each x 3 crops x 2 flips
CALIBRATION_PER_CLASS = 4
BATCH = 8
MAX_LISTED = 12  # disagreements printed per comparison
# a clip is "decisive" when the reference's top-1 logit leads its runner-up by at least this much (logits here spread
# over several units): a disagreement on a decisive clip is a real int8 error, not the flip of a near-tie
DECISIVE_MARGIN = 0.05
# post-training variants: plain static per-tensor min/max quantization; static ranges with per-channel
# squeeze-excitation outputs and bias correction; quantize_model's defaults (those plus dynamic per-clip ranges for the
# tensors whose calibration batches differ by more than 3x) with the min/max and percentile observers; and every
# eligible tensor dynamic
PTQ_VARIANTS = (
    ("static min/max, per tensor, no bias corr.", dict(per_channel=False, bias_correction=False, dynamic_ranges=False)),
    ("static min/max, per-channel SE, bias corr.", dict(dynamic_ranges=False)),
    ("min/max (defaults)", dict()),
    ("percentile (defaults otherwise)", dict(observer="percentile")),
    ("min/max, every eligible range dynamic", dict(dynamic_ranges=0)),
)
DEFAULTS = 2  # the PTQ_VARIANTS entry of quantize_model's defaults
NORMALIZE = Normalize((0.45, 0.45, 0.45), (0.225, 0.225, 0.225))


def _scaled_uint8(frames, short_side):
    scaled = torch.cat([short_side_scale(chunk, short_side) for chunk in frames.split(64, dim=1)], dim=1)
    return scaled.round().clamp(0, 255).to(torch.uint8)


def load_videos():
    """[(name, frames at short side SIZE, frames at short side TRAIN_SHORT_SIDE)] (uint8 [C, T, H, W]) per video."""
    videos = []
    for path in sorted(glob.glob(os.path.join(VIDEO_DIR, "*.mp4")) + glob.glob(os.path.join(VIDEO_DIR, "*.avi"))):
        video = EncodedVideo.from_path(path, decode_audio=False)
        frames = video.get_clip(0, video.duration)["video"]  # [C, T, H, W] float 0-255
        videos.append((os.path.basename(path), _scaled_uint8(frames, SIZE), _scaled_uint8(frames, TRAIN_SHORT_SIDE)))
    if not videos:
        raise FileNotFoundError(f"no .mp4/.avi videos in {VIDEO_DIR}")
    return videos


def class_ranges(videos):
    """[(label, video index, [training frame ranges], held-out frame range)], one per (video, segment).

    The held-out range is the middle of the segment, so each held-out clip's nearest training frames are its own
    class's; frame ranges are half-open and every clip lies inside one range."""
    ranges = []
    for v, (name, frames, _) in enumerate(videos):
        bounds = torch.linspace(0, frames.shape[1], SEGMENTS + 1).long().tolist()
        for s in range(SEGMENTS):
            lo, hi = bounds[s], bounds[s + 1]
            cut = [lo + int(f * (hi - lo)) for f in HELD_OUT]
            train, held_out = [(lo, cut[0]), (cut[1], hi)], (cut[0], cut[1])
            if min(b - a for a, b in train + [held_out]) < WINDOW:
                raise ValueError(f"segment {s} of {name} is too short for {WINDOW}-frame clips")
            ranges.append((len(ranges), v, train, held_out))
    return ranges


def make_clip(frames, start, crop, flip, num_frames=FRAMES):
    """Normalised float clip [3, num_frames, h, w] from WINDOW frames at ``start`` (sampled uniformly: frames repeat
    where num_frames > WINDOW); ``crop``: a uniform_crop index (0/1/2, SIZE square) or (y, x, size)."""
    clip = uniform_temporal_subsample(frames[:, start:start + WINDOW], num_frames).float()
    if isinstance(crop, int):
        clip = uniform_crop(clip, SIZE, crop)
    else:
        y, x, size = crop
        clip = clip[..., y:y + size, x:x + size]
    if flip:
        clip = clip.flip(-1)
    return NORMALIZE(clip / 255.0)


def held_out_set(videos, ranges, num_frames=FRAMES):
    clips, labels = [], []
    for label, v, _, (lo, hi) in ranges:
        for start in torch.linspace(lo, hi - WINDOW, HELD_OUT_STARTS).long().tolist():
            for crop in (0, 1, 2):
                for flip in (False, True):
                    clips.append(make_clip(videos[v][1], start, crop, flip, num_frames))
                    labels.append(label)
    return torch.stack(clips), torch.tensor(labels)


def random_clip(frames, train_ranges, size, generator, num_frames=FRAMES):
    """A clip from a random start inside one of ``train_ranges``, random ``size`` crop, random flip."""
    starts = [start for lo, hi in train_ranges for start in range(lo, hi - WINDOW + 1)]
    start = starts[int(torch.randint(len(starts), (1,), generator=generator))]
    y = int(torch.randint(0, frames.shape[2] - size + 1, (1,), generator=generator))
    x = int(torch.randint(0, frames.shape[3] - size + 1, (1,), generator=generator))
    flip = bool(torch.rand(1, generator=generator) < 0.5)
    return make_clip(frames, start, (y, x, size), flip, num_frames)


def calibration_set(videos, ranges, generator, num_frames=FRAMES):
    """Batches of evaluation-size clips from the training ranges only."""
    clips = [random_clip(videos[v][1], train, SIZE, generator, num_frames)
             for _, v, train, _ in ranges for _ in range(CALIBRATION_PER_CLASS)]
    return list(torch.stack(clips).split(BATCH))


def train_batches(videos, ranges, generator):
    while True:
        picks = torch.randint(0, len(ranges), (BATCH,), generator=generator).tolist()
        clips = [random_clip(videos[ranges[i][1]][2], ranges[i][2], TRAIN_SIZE, generator) for i in picks]
        yield torch.stack(clips), torch.tensor([ranges[i][0] for i in picks])


def train(model, batches, seconds=None, steps=None, lr=3e-3):
    """AdamW on cross-entropy until ``seconds`` have passed or ``steps`` were taken, the learning rate following a
    cosine from ``lr`` to 0 over that budget (time or steps); returns (steps, last 10 losses)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    model.train()
    start, losses = time.perf_counter(), []
    while True:
        done = max((time.perf_counter() - start) / seconds if seconds else 0.0, len(losses) / steps if steps else 0.0)
        if done >= 1.0:
            break
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * done))
        clips, labels = next(batches)
        loss = F.cross_entropy(model(clips), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return len(losses), losses[-10:]


def logits_of(model, clips):
    with torch.no_grad():
        return torch.cat([model(batch) for batch in clips.split(BATCH)])


def distill_qat(deploy, calibration, batches, steps, lr=1e-4):
    """QAT aimed at agreement: start from the PTQ min/max ranges (observed on ``calibration``, then frozen) and
    fine-tune the fake-quantized weights so the fake-int8 logits match ``deploy``'s fp32 logits (MSE) on training
    clips. Returns (steps, converted int8 model); ``deploy`` is not changed."""
    qat = prepare_qat(copy.deepcopy(deploy), observer="minmax")
    calibrate(qat, calibration)
    freeze_observers(qat)
    qat.eval()  # eval only switches dropout off; fake quantization and gradients stay on
    optimizer = torch.optim.AdamW(qat.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        clips, _ = next(batches)
        with torch.no_grad():
            target = deploy(clips)
        loss = F.mse_loss(qat(clips), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps, convert_qat(qat)


def conv_errors(deploy, int8, clips):
    """[(deploy-form conv name, relative L2 error of the int8 model's dequantized output of that conv against the
    fp32 conv output)] in execution order. The int8 model runs on its own int8 inputs, so errors accumulate; a jump
    from one layer to the next is what that layer adds."""
    fp32_out, int8_out, hooks = {}, {}, []
    for name, module in deploy.named_modules():
        if isinstance(module, FusedConv3d):  # int8 modules are named after the deploy path: dots -> _, + _int8
            key = name.replace(".", "_") + "_int8"
            hooks.append(module.register_forward_hook(lambda m, i, o, key=key: fp32_out.__setitem__(key, o)))
    for name, module in int8.named_modules():
        if isinstance(module, QuantizedConv3d):
            hooks.append(module.register_forward_hook(lambda m, i, o, key=name: int8_out.__setitem__(
                key, o if m.output_qparams is None else dequantize(o, m.output_qparams))))  # per tensor or channel
    with torch.no_grad():
        deploy(clips)
        int8(clips)
    for hook in hooks:
        hook.remove()
    return [(key[:-len("_int8")], float((out - fp32_out[key]).norm() / fp32_out[key].norm().clamp_min(1e-12)))
            for key, out in int8_out.items() if key in fp32_out]


def short_name(conv_name):
    """'s2_pathway0_res0_layers_conv_1_kernel' -> 's2.r0.c1' (c0/c1/c2: pointwise, depthwise, pointwise+residual)."""
    for long, short in (("_pathway0_res", ".r"), ("_layers_conv_", ".c"), ("__res_proj", ".proj"),
                        ("_pathway0_stem_conv", ".stem"), ("_kernel", ""), ("head_", "head.")):
        conv_name = conv_name.replace(long, short)
    return conv_name


def evaluate(title, model, calibration, held_out, labels, qat_steps, qat_batches, always_qat=False, thresholds=(),
             quick=False):
    """Deploy, lower and quantize ``model``; print agreement and errors on ``held_out`` against native fp32 and the
    held-out accuracy of each variant (QAT when ``qat_steps`` > 0 and PTQ stays below 99% agreement or
    ``always_qat``)."""
    model.eval()
    example = held_out[:1]
    deploy = convert_to_deployable_form(model, example).eval()
    native_fp32 = lower_to_native(deploy)
    fp32 = logits_of(native_fp32, held_out)
    rows = [("native fp32 vs original (eager)", compare_logits(logits_of(model, held_out), fp32), fp32)]
    variants = (PTQ_VARIANTS[DEFAULTS],) if quick else PTQ_VARIANTS
    variants = variants + tuple((f"min/max, dynamic where scales vary > {t:g}x", dict(dynamic_ranges=float(t)))
                                    for t in thresholds)
    for label, options in variants:
        int8 = quantize_model(deploy, calibration, **options)
        dynamic = sum(1 for m in int8.modules() if getattr(m, "dynamic_input", False))
        out = logits_of(compile_native(int8), held_out)
        label += f" ({dynamic} dynamic readers)" if dynamic else ""
        rows.append((f"native int8 PTQ {label} vs native fp32", compare_logits(fp32, out), out))
        if options == PTQ_VARIANTS[DEFAULTS][1] and not quick:  # the torch reference of the same model: native kernels add nothing
            rows.append(("  int8 torch reference vs native int8", compare_logits(out, logits_of(int8, held_out)), None))
            errors = conv_errors(deploy, int8, held_out[::len(held_out) // BATCH][:BATCH])
    ptq_best = max(result.top1_agreement for name, result, _ in rows if "PTQ" in name)
    if qat_steps and (ptq_best < 0.99 or always_qat):
        done, qat_int8 = distill_qat(deploy, calibration, qat_batches, qat_steps)
        out = logits_of(lower_quantized_to_native(qat_int8), held_out)
        rows.append((f"native int8 QAT ({done} steps) vs native fp32", compare_logits(fp32, out), out))
    print(f"\n{title}: held-out clips {len(labels)}, calibration clips {sum(len(b) for b in calibration)}")
    header = (f"{'comparison':58s} {'top-1 agree':>13s} {'mean rel L2':>11s} {'max rel L2':>10s} {'max |err|':>9s} "
              f"{'med ref margin':>15s} {'accuracy':>8s}")
    print(header)
    print("  (rows 'A vs B': B is the reference; a disagreement shows B's class and its margin over A's class -> A's class"
          " and its margin)")
    top2 = fp32.topk(2, dim=1).values
    decisive = (top2[:, 0] - top2[:, 1]) >= DECISIVE_MARGIN
    print(f"decisive clips (native fp32 top-1 margin >= {DECISIVE_MARGIN}): {int(decisive.sum())} of {len(decisive)}; "
          f"int8 rows also give their agreement on those")
    for name, result, out in rows:
        accuracy = "" if out is None else f"{float((out.argmax(1) == labels).float().mean()):8.3f}"
        if out is not None and ("vs native fp32" in name or "vs fp32" in name):
            flipped = sum(1 for d in result.disagreements if decisive[d.index])
            accuracy += f"   decisive: {int(decisive.sum()) - flipped}/{int(decisive.sum())} agree"
        print(f"{name:58s} {result.agreed:4d}/{result.count:<4d}{100 * result.top1_agreement:5.1f}% "
              f"{result.mean_relative_l2:11.4f} {result.max_relative_l2:10.4f} {result.max_abs_error:9.4f} "
              f"{result.median_fp32_margin:15.4f} {accuracy}")
        for d in result.disagreements[:MAX_LISTED]:
            print(f"    clip {d.index:3d}: class {d.fp32_class} (margin {d.fp32_margin:.4f}) -> "
                  f"class {d.int8_class} (margin {d.int8_margin:.4f})")
        if len(result.disagreements) > MAX_LISTED:
            print(f"    ... {len(result.disagreements) - MAX_LISTED} more disagreements")
    if quick:
        return
    print(f"PTQ min/max (defaults), relative L2 error of each conv's int8 output (accumulated) on {BATCH} held-out clips:")
    for i in range(0, len(errors), 8):
        print("  " + "  ".join(f"{short_name(name):>10s} {error:.3f}" for name, error in errors[i:i + 8]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-seconds", type=float, default=220.0, help="time box for training (default 220)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a loaded 2-core machine a 2nd thread stalls training steps)")
    parser.add_argument("--qat-steps", type=int, default=40,
                        help="QAT fine-tuning steps, run only when PTQ agreement is below 99%% (0: never)")
    parser.add_argument("--always-qat", action="store_true", help="run QAT even when PTQ reaches 99%%")
    parser.add_argument("--train-steps", type=int, default=0,
                        help="train this many steps instead of --train-seconds (reproducible on any machine)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the training clips (default 0)")
    parser.add_argument("--save-trained", metavar="PATH",
                        help="save the trained model's state_dict here (to study its int8 behaviour offline)")
    parser.add_argument("--load-trained", metavar="PATH",
                        help="skip training: load a state_dict saved with --save-trained (same --seed: the held-out "
                             "and calibration clips do not depend on it, the QAT clips do)")
    parser.add_argument("--frames", type=int, default=FRAMES,
                        help=f"frames of the held-out and calibration clips (default {FRAMES}; 13: X3D-S's clip, the "
                             "same network run as EfficientX3d-S on 13 frames sampled from the same 8-frame windows)")
    parser.add_argument("--thresholds", type=lambda text: [float(t) for t in text.split(",") if t],
                        default=[], help="comma-separated dynamic_ranges thresholds to add as PTQ rows (e.g. 3,2,1.5)")
    parser.add_argument("--quick", action="store_true",
                        help="only the trained model and quantize_model's defaults (plus any --thresholds rows), "
                             "without the torch int8 reference and the per-conv errors: a few minutes with "
                             "--load-trained, to compare one change to the quantizer")
    args = parser.parse_args()
    print(machine.describe())  # the CPU these timings come from
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # any subnormal values training produces would run ~100x slower on x86
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    videos = load_videos()
    ranges = class_ranges(videos)
    held_out, labels = held_out_set(videos, ranges, args.frames)
    calibration = calibration_set(videos, ranges, generator, args.frames)
    print(f"videos: {', '.join(f'{n} {tuple(f.shape)}' for n, f, _ in videos)}; {len(ranges)} classes "
          f"(video x {SEGMENTS} segments); decode + clips {time.perf_counter() - start:.1f} s")
    batches = train_batches(videos, ranges, generator)

    random_init = create_x3d(expansion="XS", num_classes=len(ranges), dropout=0.2)
    trained = copy.deepcopy(random_init)
    t0 = time.perf_counter()
    if args.load_trained:
        trained.load_state_dict(torch.load(args.load_trained))
        print(f"loaded the trained model's state_dict from {args.load_trained}")
    else:
        if args.train_steps:
            steps, losses = train(trained, batches, steps=args.train_steps)
        else:
            steps, losses = train(trained, batches, seconds=args.train_seconds)
        print(f"trained EfficientX3d-XS: {steps} AdamW steps of {BATCH} clips at {FRAMES}x{TRAIN_SIZE}x{TRAIN_SIZE} in "
              f"{time.perf_counter() - t0:.0f} s, mean loss of the last 10 steps {sum(losses) / len(losses):.3f}")
    if args.save_trained:
        torch.save(trained.state_dict(), args.save_trained)
        print(f"saved the trained model's state_dict to {args.save_trained}")
    name = "EfficientX3d-XS" if args.frames == FRAMES else f"EfficientX3d-XS weights on {args.frames}-frame clips"
    models = ((f"trained {name}", trained),) + (() if args.quick else ((f"random-init {name}", random_init),))
    for title, model in models:
        evaluate(title, model, calibration, held_out, labels, args.qat_steps, batches, args.always_qat, args.thresholds,
                 quick=args.quick)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
