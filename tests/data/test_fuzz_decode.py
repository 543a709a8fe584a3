"""A mutation fuzz run of the native decoders in a child process: thousands of corrupted videos and images must
each give frames or a clear Python exception; a crash, hang or other exception type fails the test."""
import shutil
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.helpers.synth import moving_square_frames, write_video

CASES = 2500


def test_mutation_fuzz(tmp_path, shared_data):
    frames = moving_square_frames(12, 32, 48)
    write_video(tmp_path / "a.mp4", frames, fps=25, codec="h264_bframes")
    write_video(tmp_path / "b.avi", frames, fps=25, codec="mpeg4", audio_hz=8000)
    write_video(tmp_path / "c.webm", frames, fps=25, codec="vp9")
    write_video(tmp_path / "d.mkv", frames, fps=25, codec="h264", audio_hz=8000)
    shutil.copy(sorted((shared_data / "frames").glob("img_*.jpg"))[0], tmp_path / "e.jpg")
    result = subprocess.run([sys.executable, "-m", "tests.data.fuzz_decode_worker", str(tmp_path), str(CASES), "90"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"fuzz worker failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-3000:]}"
    summary = dict(item.split("=") for item in result.stdout.split())
    cases, errors = int(summary["cases"]), int(summary["errors"])
    assert cases >= 1000, f"only {cases} cases ran in the time budget"
    assert 0 < errors < cases  # the mutations both break files and leave some decodable
