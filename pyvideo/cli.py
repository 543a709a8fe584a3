"""The ``pyvideo`` command line.

    pyvideo info [VIDEO]           version, build options, ISA levels, FFmpeg and CUDA; with VIDEO, its metadata
    pyvideo demo                   synthesise -> train -> evaluate -> deploy -> int8, one table (the main job)
    pyvideo synth OUT              a Kinetics-layout dataset of MP4s whose classes differ only by motion
    pyvideo train DATA --out DIR   train a classifier on DATA/train.csv (+ DATA/val.csv); torchrun for DDP
    pyvideo eval DATA --checkpoint multi-view top-1/top-5 and a confusion matrix PNG
    pyvideo classify VIDEO         top-5 labels of a video (a trained run, a Kinetics checkpoint, or --pretrained)
    pyvideo bench-kernels          native depthwise conv3d vs PyTorch on X3D-XS layers
"""
import argparse
import json
import os
import sys
from typing import List, Optional


def _cmd_info(args: argparse.Namespace) -> int:
    import torch

    import pyvideo
    from pyvideo import _native

    if args.video:
        from pyvideo.data.encoded_video import video_metadata

        for key, value in video_metadata(args.video).items():
            print(f"{key:>16}: {value}")
        return 0
    info = _native.build_info()
    print(f"pyvideo {pyvideo.__version__} (libvideo {info['version']})")
    print(f"  compiler      : {info['compiler']}")
    print(f"  build type    : {info['build_type']}   sanitizers: {info['sanitizers']}   openmp: {info['openmp']}")
    print(f"  ISA compiled  : {info['isa_compiled']}")
    print(f"  ISA supported : {info['isa_supported']}   (CPU features: {info['cpu_features']})")
    forced = f"  (forced by PYVIDEO_ISA={info['PYVIDEO_ISA']})" if info["PYVIDEO_ISA"] else ""
    print(f"  ISA active    : {info['isa_active']}{forced}")
    no_dot = "  (PYVIDEO_VNNI=0: byte dot products left out)" if os.environ.get("PYVIDEO_VNNI") == "0" else ""
    print(f"  int8 kernels  : {_native.int8_kernel_description()}{no_dot}")
    l2 = int(info["l2_cache_bytes"])
    print(f"  L2 cache      : {f'{l2 // 1024} KB' if l2 else 'unknown'}   (sizes the kernels' blocking; PYVIDEO_L2_BYTES "
          "overrides)")
    print(f"  FFmpeg        : {info['ffmpeg']}")
    cuda = f"available, {torch.cuda.device_count()} device(s)" if torch.cuda.is_available() else "not available"
    print(f"  CUDA (torch)  : {cuda}")
    print(f"  torch         : {torch.__version__}")
    return 0


def _cmd_bench_kernels(args: argparse.Namespace) -> int:
    from pyvideo import _native
    from pyvideo.benchmarks.kernels import benchmark, format_table, x3d_depthwise_layers

    print(f"pyvideo bench-kernels: native depthwise conv3d ({_native.native().get_isa()}) vs PyTorch on X3D-XS layers")
    rows = benchmark(x3d_depthwise_layers("X3D-XS", 4), threads=args.threads, repeat=args.repeat)
    print(format_table(rows))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pyvideo.tasks.demo import DemoSettings, run_demo

    settings = DemoSettings(num_classes=args.num_classes, videos_per_class=args.videos_per_class, epochs=args.epochs,
                            seed=args.seed, threads=args.threads)
    run_demo(settings, out_dir=args.out)
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    import time

    from pyvideo.synth import synthesize_action_dataset

    start = time.perf_counter()
    files = synthesize_action_dataset(args.out, num_classes=args.num_classes, videos_per_class=args.videos_per_class,
                                      num_frames=args.frames, fps=args.fps, height=args.size, width=args.size,
                                      val_fraction=args.val_fraction, seed=args.seed, audio=args.audio,
                                      boxes=args.boxes, encoder=args.encoder)
    print(f"wrote {args.num_classes * args.videos_per_class} videos to {args.out} in "
          f"{time.perf_counter() - start:.1f}s")
    for name, path in files.items():
        print(f"  {name:>10}: {path}")
    return 0


def _read_class_names(data_dir: str, num_classes: int) -> List[str]:
    path = os.path.join(data_dir, "classnames.json")
    if not os.path.isfile(path):
        return [str(i) for i in range(num_classes)]
    with open(path) as f:
        names = json.load(f)
    ordered = [str(i) for i in range(num_classes)]
    for name, index in names.items():
        if int(index) < num_classes:
            ordered[int(index)] = name
    return ordered


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from pyvideo.tasks import distributed as dist_utils
    from pyvideo.tasks.classification import train_classifier
    from pyvideo.tasks.clip_dataset import ClipDataset, read_labeled_csv
    from pyvideo.tasks.recipes import RunConfig, save_trained_model

    dist_utils.init_distributed(args.device)
    train_csv, val_csv = (os.path.join(args.data, f"{split}.csv") for split in ("train", "val"))
    num_classes = args.num_classes or 1 + max(label for _, label in read_labeled_csv(train_csv))
    config = RunConfig.for_model(args.model, num_classes, _read_class_names(args.data, num_classes),
                                 num_frames=args.frames, crop_size=args.crop, short_side=args.short_side,
                                 residual_frames=args.residual_frames)
    train_set = ClipDataset(train_csv, video_path_prefix=args.data, transform=config.transform("train"), seed=args.seed)
    val_set = None
    if os.path.isfile(val_csv):
        val_set = ClipDataset(val_csv, video_path_prefix=args.data, transform=config.transform("val"))
    torch.manual_seed(args.seed)
    model = config.build_model()
    result = train_classifier(
        model, train_set, val_dataset=val_set, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
        num_workers=args.workers, precision=args.precision, accumulate_steps=args.accumulate,
        checkpoint_dir=os.path.join(args.out, "checkpoints"), checkpoint_every_steps=args.checkpoint_every,
        resume=args.resume, precise_bn_batches=args.precise_bn_batches, seed=args.seed, device=args.device,
        log_dir=args.out)
    if dist_utils.is_main_process():
        path = save_trained_model(os.path.join(args.out, "model.pt"), model, config)
        print(f"trained {result.steps} steps; model: {path}; log: {os.path.join(args.out, 'log.csv')}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from pyvideo.tasks.clip_dataset import ClipDataset
    from pyvideo.tasks.evaluation import evaluate_multiview
    from pyvideo.tasks.recipes import load_trained_model

    model, config = load_trained_model(args.checkpoint)
    dataset = ClipDataset(os.path.join(args.data, f"{args.split}.csv"), video_path_prefix=args.data)
    result = evaluate_multiview(
        model, dataset.raw_samples(), num_frames=config.num_frames, sampling_rate=config.sampling_rate,
        crop_size=config.crop_size, short_side_size=args.short_side or config.short_side,
        num_temporal_clips=args.clips, num_spatial_crops=args.crops, mean=config.mean, std=config.std,
        view_transform=config.view_transform(), num_classes=config.num_classes, confusion_png=args.confusion)
    print(f"{len(dataset)} videos, {args.clips} clip(s) x {args.crops} crop(s): "
          f"top-1 {result.metrics['top1'] * 100:.2f}%  top-5 {result.metrics['top5'] * 100:.2f}%")
    if args.confusion:
        print(f"confusion matrix (rows: true class, columns: predicted): {args.confusion}")
    return 0


def _model_for_classify(args: argparse.Namespace):
    """(model, config) from a trained run, a Kinetics checkpoint file + --model, or --pretrained + --model."""
    from pyvideo.models import hub
    from pyvideo.tasks.recipes import RunConfig, kinetics_class_names, load_trained_model, recipe_for

    if args.checkpoint and not args.model:
        return load_trained_model(args.checkpoint)
    name = args.model or "x3d_s"
    if not recipe_for(name).kinetics_checkpoint:
        raise ValueError(f"--model {name} has no Kinetics-400 checkpoint; use a run saved by `pyvideo train`")
    config = RunConfig.for_model(name, 400, kinetics_class_names())
    if args.checkpoint:
        return getattr(hub, name)(checkpoint_path=args.checkpoint).eval(), config
    url = getattr(hub, name).metadata.checkpoint_url
    try:
        return config.build_model(pretrained=True).eval(), config
    except RuntimeError as error:
        raise RuntimeError(
            f"cannot get the Kinetics-400 {name} checkpoint from {url}: this machine cannot reach it "
            f"({error.__cause__ or error}). Download the file elsewhere and run "
            f"`pyvideo classify VIDEO --model {name} --checkpoint PATH`") from error


def _cmd_classify(args: argparse.Namespace) -> int:
    import torch

    from pyvideo.tasks.clip_dataset import decode_video
    from pyvideo.tasks.evaluation import evaluate_multiview

    if not args.checkpoint and not args.pretrained:
        raise ValueError("give --checkpoint PATH (a `pyvideo train` model.pt or a Kinetics .pyth with --model) "
                         "or --pretrained")
    video = decode_video(args.video)  # decode first: a bad video path fails before any download
    model, config = _model_for_classify(args)
    result = evaluate_multiview(
        model, [(video, 0)], num_frames=config.num_frames, sampling_rate=config.sampling_rate,
        crop_size=config.crop_size, short_side_size=config.short_side, num_temporal_clips=args.clips,
        num_spatial_crops=args.crops, mean=config.mean, std=config.std, view_transform=config.view_transform(),
        num_classes=config.num_classes)
    scores = result.scores[0]
    top = torch.topk(scores, min(args.top, len(scores)))
    print(f"{args.video}: {config.model}, {args.clips} clip(s) x {args.crops} crop(s)")
    for rank, (score, index) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
        name = config.class_names[index] if index < len(config.class_names) else str(index)
        print(f"  {rank}. {name:<32} {score:.4f}")
    return 0


def _add_training_arguments(train: argparse.ArgumentParser) -> None:
    train.add_argument("data", help="dataset folder with train.csv (and val.csv, classnames.json), as `synth` writes")
    train.add_argument("--out", required=True, help="output folder: checkpoints/, log.csv, model.pt")
    train.add_argument("--model", default="small_x3d", help="small_x3d, efficient_x3d_xs, x3d_xs, x3d_s, x3d_m, slow_r50")
    train.add_argument("--num-classes", type=int, help="default: 1 + the largest label in train.csv")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--optimizer", choices=("sgd", "adamw"), default="adamw")
    train.add_argument("--lr", type=float, default=0.01)
    train.add_argument("--weight-decay", type=float, default=1e-4)
    train.add_argument("--warmup-epochs", type=float, default=0.5)
    train.add_argument("--accumulate", type=int, default=1, help="micro-batches per optimizer step")
    train.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto")
    train.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    train.add_argument("--frames", type=int, help="frames per clip (default: the model's)")
    train.add_argument("--crop", type=int, help="crop size (default: the model's)")
    train.add_argument("--short-side", type=int, help="short side before cropping (default: the model's)")
    train.add_argument("--residual-frames", action=argparse.BooleanOptionalAction, default=None,
                       help="subtract each clip's temporal mean (default: the model's recipe)")
    train.add_argument("--precise-bn-batches", type=int, default=0)
    train.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default: end of training)")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in OUT")
    train.add_argument("--device", default="cpu")
    train.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyvideo", description="pyvideo: video understanding with a native core")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="build information, or a video's metadata")
    info.add_argument("video", nargs="?", help="print this video's metadata instead")
    info.set_defaults(func=_cmd_info)

    demo = sub.add_parser("demo", help="synthesise, train, evaluate, deploy and quantize on the CPU (the main job)")
    demo.add_argument("--out", help="output folder (default: a new temporary folder)")
    demo.add_argument("--num-classes", type=int, default=4)
    demo.add_argument("--videos-per-class", type=int, default=80)
    demo.add_argument("--epochs", type=int, default=12)
    demo.add_argument("--threads", type=int, help="torch threads (default: 2, or 1 when the CPUs are busy)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_cmd_demo)

    kernels = sub.add_parser("bench-kernels", help="native depthwise conv3d vs PyTorch on X3D-XS layers")
    kernels.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    kernels.add_argument("--repeat", type=int, default=10)
    kernels.set_defaults(func=_cmd_bench_kernels)

    synth = sub.add_parser("synth", help="write a synthetic motion-classes dataset (Kinetics layout, MP4)")
    synth.add_argument("out")
    synth.add_argument("--num-classes", type=int, default=6)
    synth.add_argument("--videos-per-class", type=int, default=20)
    synth.add_argument("--frames", type=int, default=16)
    synth.add_argument("--fps", type=float, default=8.0)
    synth.add_argument("--size", type=int, default=64, help="frame height and width (even)")
    synth.add_argument("--val-fraction", type=float, default=0.25)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--audio", action="store_true", help="add an AAC tone whose pitch encodes the class")
    synth.add_argument("--boxes", action="store_true", help="write ava_boxes.csv with the moving object's boxes")
    synth.add_argument("--encoder", choices=("ffmpeg", "native"), default="ffmpeg",
                       help="ffmpeg tool (byte-reproducible, default) or pyvideo's native encoder (faster)")
    synth.set_defaults(func=_cmd_synth)

    train = sub.add_parser("train", help="train a video classifier (launch with torchrun for DDP)")
    _add_training_arguments(train)
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser("eval", help="multi-view evaluation of a trained model")
    evaluate.add_argument("data", help="dataset folder")
    evaluate.add_argument("--checkpoint", required=True, help="model.pt written by `pyvideo train`")
    evaluate.add_argument("--split", default="val", help="which csv: val -> DATA/val.csv")
    evaluate.add_argument("--clips", type=int, default=10, help="temporal clips per video")
    evaluate.add_argument("--crops", type=int, choices=(1, 3), default=3, help="spatial crops per clip")
    evaluate.add_argument("--short-side", type=int, help="short side before cropping (default: the training one)")
    evaluate.add_argument("--confusion", help="write the confusion matrix to this PNG")
    evaluate.set_defaults(func=_cmd_eval)

    classify = sub.add_parser("classify", help="print a video's top-5 labels")
    classify.add_argument("video")
    classify.add_argument("--checkpoint", help="model.pt from `pyvideo train`, or a Kinetics .pyth with --model")
    classify.add_argument("--model", help="x3d_xs, x3d_s (default with --pretrained), x3d_m, slow_r50")
    classify.add_argument("--pretrained", action="store_true", help="download the Kinetics-400 weights")
    classify.add_argument("--clips", type=int, default=1)
    classify.add_argument("--crops", type=int, choices=(1, 3), default=1)
    classify.add_argument("--top", type=int, default=5)
    classify.set_defaults(func=_cmd_classify)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"pyvideo {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
