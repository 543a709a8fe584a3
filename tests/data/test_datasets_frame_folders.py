"""Frame-folder datasets on real JPEG frames (../shared/data/frames): Charades, Epic-Kitchens and DoMSEV
decode through FrameVideo; frames are compared with an independent ffmpeg CLI decode."""
import shutil
import subprocess

import pytest
import torch

from pyvideo.data import Charades, DomsevFrameDataset, DomsevVideoDataset, EpicKitchenRecognition, make_clip_sampler
from pyvideo.data.dataset_manifest_utils import VideoClipInfo, VideoFrameInfo, save_video_frame_info
from pyvideo.data.epic_kitchen.utils import build_frame_manifest_from_flat_directory
from tests.helpers.synth import require_ffmpeg

pytest.importorskip("pyvideo.data.frame_video", reason="FrameVideo (decoder side) not built yet")

NUM_FRAMES = 10  # img_00001.jpg .. img_00010.jpg, 320x240


def ffmpeg_rgb(path):
    raw = subprocess.run([require_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(240, 320, 3).permute(2, 0, 1).float()


@pytest.fixture
def frames(shared_data, tmp_path):
    """The ten frames copied as ``video one/frame_000000000N.jpg``."""
    folder = tmp_path / "video one"
    folder.mkdir()
    for i in range(1, NUM_FRAMES + 1):
        shutil.copy(shared_data / "frames" / f"img_{i:05d}.jpg", folder / f"frame_{i:010d}.jpg")
    return folder


def test_charades_on_real_frames(frames, tmp_path):
    lines = ["original_vido_id video_id frame_id path labels"]
    lines += [f'vid 0 {i} "video one/frame_{i + 1:010d}.jpg" "{i % 3}"' for i in range(NUM_FRAMES)]
    (tmp_path / "charades.csv").write_text("\n".join(lines) + "\n")
    data = Charades(str(tmp_path / "charades.csv"), make_clip_sampler("uniform", 0.5), video_path_prefix=str(tmp_path),
                    fps=10)
    (first, second) = list(data)
    assert first["frame_indices"] == [0, 1, 2, 3, 4] and second["frame_indices"] == [5, 6, 7, 8, 9]
    assert second["label"] == [[2], [0], [1], [2], [0]] and first["video_label"] == [0, 1, 2]
    assert first["video"].shape == (3, 5, 240, 320)
    assert (first["video"][:, 2] - ffmpeg_rgb(frames / "frame_0000000003.jpg")).abs().max() <= 2


def write_manifests(frames, tmp_path, id_column="video_id"):
    manifest = build_frame_manifest_from_flat_directory(str(frames.parent), multithreaded=False)
    assert manifest["video one"] == VideoFrameInfo("video one", str(frames), "frame_", 16, 1, 10, "jpg")
    save_video_frame_info(manifest, str(tmp_path / "frames.csv"))
    (tmp_path / "info.csv").write_text(f"{id_column},resolution,duration,fps\nvideo one,320x240,1.0,10\n")
    return str(tmp_path / "frames.csv"), str(tmp_path / "info.csv")


def test_epic_kitchen_recognition_on_real_frames(frames, tmp_path):
    frames_csv, info_csv = write_manifests(frames, tmp_path, id_column="video")
    (tmp_path / "actions.csv").write_text(
        "participant_id,video_id,narration,start_timestamp,stop_timestamp,start_frame,stop_frame,verb,verb_class,"
        "noun,noun_class,all_nouns,all_noun_classes\n"
        "P01,video one,open door,00:00:00.10,00:00:00.30,1,3,open,3,door,8,\"['door']\",[8]\n"
        "P01,video one,close door,00:00:00.80,00:00:00.90,8,9,close,4,door,8,\"['door']\",[8]\n"
    )
    torch.manual_seed(0)
    offset = torch.rand(()).item() * 0.4
    torch.manual_seed(0)
    data = EpicKitchenRecognition(info_csv, str(tmp_path / "actions.csv"), frames_csv, seconds_per_clip=0.4)
    assert len(data) == int((1.0 - offset) // 0.4)
    clip = data[0]
    assert clip["start_time"] == pytest.approx(offset) and clip["video"].shape[:2] == (3, 4)
    assert [a.narration for a in clip["actions"]] == ["open door"]


def test_domsev_frames_and_clips_on_real_frames(frames, tmp_path):
    frames_csv, info_csv = write_manifests(frames, tmp_path)
    (tmp_path / "labels.csv").write_text(
        "video_id,start_time,stop_time,start_frame,stop_frame,label_id,label_name\n"
        "video one,0.0,0.5,1,5,1,walking\nvideo one,0.5,1.0,6,10,3,standing\n"
    )
    frame_data = DomsevFrameDataset(frames_csv, info_csv, str(tmp_path / "labels.csv"))
    assert len(frame_data) == 10
    item = frame_data[6]  # frame_0000000007
    assert item["frame_id"] == "frame_0000000007" and item["label"] == 3
    assert (item["image"] - ffmpeg_rgb(frames / "frame_0000000007.jpg")).abs().max() <= 2

    def two_clips(videos, labels):
        return [VideoClipInfo("video one", 0.0, 0.4), VideoClipInfo("video one", 0.3, 0.7)]

    clips = DomsevVideoDataset(frames_csv, info_csv, str(tmp_path / "labels.csv"), two_clips, frames_per_second=10)
    assert len(clips) == 2
    # [0.3, 0.7] overlaps "walking" on [0.3, 0.5] (frames 3, 4) and "standing" on [0.5, 0.7] (frames 5, 6)
    assert clips[1]["labels"].tolist() == [1, 1, 3, 3]
    assert clips[0]["video"].shape == (3, 4, 240, 320)


def test_ssv2_on_real_frames(frames, tmp_path):
    import json

    from pyvideo.data import SSv2

    lines = ["original_vido_id video_id frame_id path labels"]
    lines += [f'vid 0 {i} "video one/frame_{i + 1:010d}.jpg" ""' for i in range(NUM_FRAMES)]
    (tmp_path / "frames.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels.json").write_text(json.dumps({"Opening something": "4"}))
    (tmp_path / "train.json").write_text(json.dumps([{"id": "vid", "template": "Opening [something]"}]))
    data = SSv2(str(tmp_path / "labels.json"), str(tmp_path / "train.json"), str(tmp_path / "frames.csv"),
                make_clip_sampler("constant_clips_per_video", 1, 1), video_path_prefix=str(tmp_path), frames_per_clip=4)
    (sample,) = list(data)
    assert sample["label"] == 4 and sample["video"].shape == (3, 4, 240, 320)
    # 10 frames in 4 segments of 2.25: middles of [0,2] [2,4] [4,7] [7,9] -> frames 1, 3, 5, 8
    for t, frame in enumerate([1, 3, 5, 8]):
        assert (sample["video"][:, t] - ffmpeg_rgb(frames / f"frame_{frame + 1:010d}.jpg")).abs().max() <= 2
