"""Frame-folder datasets (Charades, SSv2, AVA): annotation files the tests write, FakeVideos for frames."""
import json

import pytest
import torch

from pyvideo.data import Ava, Charades, SSv2, make_clip_sampler
from pyvideo.data.ava import AvaLabeledVideoFramePaths, TimeStampClipSampler
from pyvideo.data.frame_sampling import pick_uniform
from pyvideo.data.frame_lists import read_frame_list
from pyvideo.data.ssv2 import segment_frames

from .fake_video import FakeVideo, FakeVideoPathHandler

FRAMES = 20  # FakeVideo runs at 10 fps: 2 s per video


def frame_labels(i):
    return [i % 3] if i % 2 == 0 else []


def write_frame_list(path, videos):
    lines = ["original_vido_id video_id frame_id path labels"]
    for v, name in enumerate(videos):
        for i in range(FRAMES):
            labels = ",".join(map(str, frame_labels(i)))
            lines.append(f'{name} {v} {i} {name}/img_{i:05d}.jpg "{labels}"')
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def open_as_fake(dataset):
    dataset._open_video = lambda frame_paths: FakeVideo(frame_paths[0], len(frame_paths) / 10)
    return dataset


def test_frame_list_reader(tmp_path):
    paths, labels = read_frame_list(write_frame_list(tmp_path / "f.csv", ["vidA", "vidB"]), prefix="/frames")
    assert list(paths) == ["vidA", "vidB"]
    assert paths["vidB"][3] == "/frames/vidB/img_00003.jpg"
    assert labels["vidA"][:4] == [[0], [], [2], []]
    (tmp_path / "bad.csv").write_text("a b c\n1 2 3\n")
    with pytest.raises(ValueError, match="header"):
        read_frame_list(str(tmp_path / "bad.csv"))


def test_frame_selection_helpers():
    assert pick_uniform(list(range(10, 20)), 4) == [10, 13, 16, 19]
    assert pick_uniform(list(range(10, 16)), 4) == [10, 11, 13, 15]  # linspace(0, 5, 4) = 0, 1.67, 3.33, 5 truncated
    # 20 frames in 4 segments of 4.75: middles of [0,5] [5,10] [10,14] [14,19]
    assert segment_frames(list(range(20)), 4, rand_sample=False) == [2, 7, 12, 16]
    random_pick = segment_frames(list(range(20)), 4, rand_sample=True, generator=torch.Generator().manual_seed(0))
    assert all(lo <= f <= hi for f, (lo, hi) in zip(random_pick, [(0, 5), (5, 10), (10, 14), (14, 19)]))


def test_charades_per_frame_and_video_labels(tmp_path):
    data = open_as_fake(Charades(
        write_frame_list(tmp_path / "train.csv", ["vidA"]), make_clip_sampler("uniform", 1),
        torch.utils.data.SequentialSampler, frames_per_clip=4,
    ))
    samples = list(data)
    assert [s["frame_indices"] for s in samples] == [[0, 3, 6, 9], [10, 13, 16, 19]]
    assert samples[1]["label"] == [frame_labels(i) for i in (10, 13, 16, 19)] == [[1], [], [1], []]
    assert samples[0]["video_label"] == [0, 1, 2] and samples[0]["video_name"] == "vidA"
    assert samples[0]["video"][0, :, 0, 0].tolist() == [0, 3, 6, 9]
    assert Charades.NUM_CLASSES == 157


def test_ssv2_labels_by_template_and_whole_video_clips(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"Pushing something": "0", "Holding something": "1"}))
    (tmp_path / "train.json").write_text(json.dumps([
        {"id": "vidA", "template": "Pushing [something]"},
        {"id": "vidB", "template": "Holding [something]"},
        {"id": "vidC", "template": "Holding [something]"},  # no frames: left out
    ]))
    data = open_as_fake(SSv2(
        str(tmp_path / "labels.json"), str(tmp_path / "train.json"), write_frame_list(tmp_path / "f.csv", ["vidA", "vidB"]),
        make_clip_sampler("constant_clips_per_video", 1, 1, 2), torch.utils.data.SequentialSampler, frames_per_clip=4,
    ))
    samples = list(data)
    assert [(s["video_name"], s["label"], s["aug_index"]) for s in samples] == [
        ("vidA", 0, 0), ("vidA", 0, 1), ("vidB", 1, 0), ("vidB", 1, 1)
    ]
    assert samples[0]["video"][0, :, 0, 0].tolist() == [2, 7, 12, 16]


def write_ava(tmp_path):
    lines = ["original_video_id video_id frame_id path labels"]
    lines += [f"vid 0 {i} vid/img_{i:05d}.jpg ''" for i in (3, 1, 2)]
    (tmp_path / "frames.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels.csv").write_text(
        "vid,902,0.1,0.2,0.3,0.4,5,0.9\n"
        "vid,902,0.1,0.2,0.3,0.4,7,0.8\n"  # same box, second action
        "vid,902,0.5,0.5,0.6,0.6,5,1\n"
        "vid,903,0.1,0.1,0.2,0.2,12,0.8\n"  # action 12 not in the label map
        "vid,1800,0.1,0.1,0.2,0.2,5,0.8\n"  # outside the annotated seconds 902..1798
    )
    (tmp_path / "map.pbtxt").write_text('item {\n  name: "bend/bow"\n  id: 5\n}\nitem {\n  name: "carry"\n  id: 7\n}\n')


def test_ava_label_files_to_key_frame_entries(tmp_path):
    write_ava(tmp_path)
    image_paths, names, _ = AvaLabeledVideoFramePaths.load_image_lists(str(tmp_path / "frames.csv"), "/f")
    assert names == ["vid"] and image_paths[0] == ["/f/vid/img_00001.jpg", "/f/vid/img_00002.jpg", "/f/vid/img_00003.jpg"]
    assert AvaLabeledVideoFramePaths.read_label_map(str(tmp_path / "map.pbtxt")) == ({5: "bend/bow", 7: "carry"}, {5, 7})
    entries = AvaLabeledVideoFramePaths.from_csv(
        str(tmp_path / "frames.csv"), str(tmp_path / "labels.csv"), "/f", str(tmp_path / "map.pbtxt")
    )
    assert entries == [("/f/vid", {
        "labels": [[5, 7], [5]], "boxes": [[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.6, 0.6]],
        "extra_info": [[0.9, 0.8], [1.0]], "video_index": 0, "clip_index": 2.0,
    })]
    without_map = AvaLabeledVideoFramePaths.from_csv(str(tmp_path / "frames.csv"), str(tmp_path / "labels.csv"), "/f")
    assert [info["clip_index"] for _, info in without_map] == [2.0, 3.0]


def test_ava_dataset_centres_clips_on_key_frames(tmp_path):
    write_ava(tmp_path)
    assert TimeStampClipSampler(make_clip_sampler("random", 1))(None, 0, {"clip_index": 2.0})[:2] == (1.5, 2.5)
    data = Ava(str(tmp_path / "frames.csv"), str(tmp_path / "labels.csv"), "/f", str(tmp_path / "map.pbtxt"),
               clip_sampler=make_clip_sampler("random", 1))
    data.video_path_handler = FakeVideoPathHandler({"/f/vid": 4})
    (sample,) = list(data)
    assert sample["video"][0, :, 0, 0].tolist() == list(range(15, 25))  # [1.5, 2.5) s at 10 fps
    assert sample["labels"] == [[5, 7], [5]] and sample["clip_index"] == 2.0
    with pytest.raises(TypeError, match="clip sampler"):
        Ava(str(tmp_path / "frames.csv"), str(tmp_path / "labels.csv"))
