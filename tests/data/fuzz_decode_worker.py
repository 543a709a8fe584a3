"""Mutation fuzzing of the native decoders, run as a separate process by test_fuzz_decode.py (so that a crash
fails the test instead of killing pytest). Usage: python -m tests.data.fuzz_decode_worker SEED_DIR CASES SECONDS

Each case mutates one seed file (byte flips, zeroed or duplicated spans, truncation, header damage), then opens it
from memory and decodes frames, a clip and audio. Allowed outcomes: tensors of the promised shape, or a
VideoDecodeError / ValueError / IndexError. Prints "cases=N errors=E frames=F".
"""
import sys
import time
from pathlib import Path

import numpy as np

from pyvideo import _native
from pyvideo.data.encoded_video_native import native_decode


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    kind = rng.integers(0, 5)
    if kind == 0:  # scattered byte flips
        for position in rng.integers(0, len(out), size=rng.integers(1, 30)):
            out[position] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:  # a zeroed span
        start = int(rng.integers(0, len(out)))
        out[start:start + int(rng.integers(1, 512))] = bytes(min(len(out) - start, 512))[: len(out[start:start + 512])]
    elif kind == 2:  # truncation
        out = out[: int(rng.integers(1, len(out)))]
    elif kind == 3:  # a duplicated span
        start = int(rng.integers(0, len(out)))
        out[start:start] = out[start:start + int(rng.integers(1, 2048))]
    else:  # damage inside the header, where sizes and counts live
        for position in rng.integers(0, min(len(out), 400), size=rng.integers(1, 6)):
            out[position] = int(rng.integers(0, 256))
    return bytes(out)


def run_case(decode, data: bytes, is_image: bool, tmp: Path, rng: np.random.Generator) -> int:
    if is_image:
        tmp.write_bytes(data)
        frames = _native.from_dlpack(decode.decode_image_files([str(tmp)], num_threads=1))
        assert frames.dim() == 4 and frames.shape[-1] == 3
        return frames.shape[0]
    video = decode.VideoDecoder(data, num_threads=1, name="fuzz")
    decoded = 0
    if video.has_video:
        n = video.info()["video"]["num_frames"]
        if n > 0:
            picks = sorted(set(rng.integers(0, n, size=3).tolist()))
            frames = _native.from_dlpack(video.frames_at(picks)[0])
            assert frames.shape[0] == len(picks)
            decoded += len(picks)
            frames = _native.from_dlpack(video.frames_in_range(0.0, 0.5)[0])
            decoded += frames.shape[0]
    if video.info()["audio"] is not None:
        audio = decode.AudioDecoder(data, sample_rate=8000, name="fuzz")
        samples = _native.from_dlpack(audio.samples_in_range(0.0, 0.5)[0])
        assert samples.shape[0] == 1 and samples.shape[1] <= 4000
    return decoded


def main(seed_dir: str, cases: int, seconds: float) -> None:
    decode = native_decode()
    seeds = sorted(Path(seed_dir).iterdir())
    payloads = [(p.read_bytes(), p.suffix == ".jpg") for p in seeds if p.is_file()]
    tmp = Path(seed_dir) / "case.jpg.tmp"
    rng = np.random.default_rng(12345)
    deadline = time.monotonic() + seconds
    done = errors = frames = 0
    expected = (decode.VideoDecodeError, ValueError, IndexError)
    while done < cases and time.monotonic() < deadline:
        data, is_image = payloads[done % len(payloads)]
        try:
            frames += run_case(decode, mutate(data, rng), is_image, tmp, rng)
        except expected:
            errors += 1
        done += 1
    print(f"cases={done} errors={errors} frames={frames}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
