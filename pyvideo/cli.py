"""The ``pyvideo`` command line.

    pyvideo info [VIDEO]   version, build options, ISA levels, FFmpeg and CUDA; with VIDEO, the video's metadata
    pyvideo demo           the main job (see `pyvideo demo --help`)
"""
import argparse
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
    print(f"  FFmpeg        : {info['ffmpeg']}")
    cuda = f"available, {torch.cuda.device_count()} device(s)" if torch.cuda.is_available() else "not available"
    print(f"  CUDA (torch)  : {cuda}")
    print(f"  torch         : {torch.__version__}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from pyvideo import _native
    from pyvideo.benchmarks.kernels import benchmark, format_table, x3d_depthwise_layers

    print(f"pyvideo demo: native depthwise conv3d ({_native.native().get_isa()}) vs PyTorch on X3D-XS layers")
    rows = benchmark(x3d_depthwise_layers("X3D-XS", 4), threads=args.threads, repeat=args.repeat)
    print(format_table(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyvideo", description="pyvideo: video understanding with a native core")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="build information, or a video's metadata")
    info.add_argument("video", nargs="?", help="print this video's metadata instead")
    info.set_defaults(func=_cmd_info)
    demo = sub.add_parser("demo", help="run the main job")
    demo.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    demo.add_argument("--repeat", type=int, default=10)
    demo.set_defaults(func=_cmd_demo)
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
