"""Manifest utilities, Epic-Kitchens and DoMSEV logic on CSV and folder fixtures the tests write."""
import pytest
import torch

from pyvideo.data.dataset_manifest_utils import (
    EncodedVideoInfo,
    VideoDataset,
    VideoFrameInfo,
    VideoInfo,
    frame_file_path,
    get_seconds_from_hms_time,
    save_encoded_video_manifest,
    save_video_frame_info,
)
from pyvideo.data.dataset_manifest_utils import ImageFrameInfo
from pyvideo.data.domsev import DomsevFrameDataset, LabelData, _get_overlap_for_time_range_pair, _seconds_to_frame_index
from pyvideo.data.epic_kitchen import ActionData
from pyvideo.data.epic_kitchen.utils import (
    build_encoded_manifest_from_nested_directory,
    build_frame_manifest_from_flat_directory,
    build_frame_manifest_from_nested_directory,
)
from pyvideo.data.epic_kitchen_forecasting import ClipSampling as ForecastClipSampling
from pyvideo.data.epic_kitchen_forecasting import EpicKitchenForecasting
from pyvideo.data.epic_kitchen_recognition import ClipSampling, EpicKitchenRecognition
from pyvideo.data.utils import load_dataclass_dict_from_csv


def test_hms_times():
    assert get_seconds_from_hms_time("00:01:02.50") == 62.5
    assert get_seconds_from_hms_time("01:00:00") == 3600.0
    with pytest.raises(ValueError, match="No valid data format"):
        get_seconds_from_hms_time("62.5")


def test_dataclass_fields_are_cast_and_bad_values_rejected():
    info = VideoInfo("v", "340x256", "2.5", "30")
    assert (info.duration, info.fps) == (2.5, 30.0) and isinstance(info.fps, float)
    with pytest.raises(ValueError, match="fps"):
        VideoInfo("v", "340x256", "2.5", "fast")
    action = ActionData("P01", "P01_01", "cut onion", "00:00:01.50", "00:00:03.00", "75", "150", "cut", "3", "onion",
                        "7", "['onion', 'knife']", "[7, 12]")
    assert action.all_nouns == ["onion", "knife"] and action.all_noun_classes == [7, 12]
    assert (action.start_time, action.stop_time, action.start_frame) == (1.5, 3.0, 75)


def test_frame_paths_are_zero_padded_to_the_string_length():
    info = VideoFrameInfo("P01_01", "/d", "P01_01_", "16", "1", "10", "jpg")
    assert frame_file_path(info, 7) == "/d/P01_01_000000007.jpg"
    infos = {"P01_01": VideoInfo("P01_01", "r", 0.9, 10)}
    paths = VideoDataset._frame_number_to_filepaths("P01_01", {"P01_01": info}, infos)
    assert len(paths) == 10 and paths[-1] == "/d/P01_01_000000010.jpg"


def test_manifest_roundtrip_and_incomplete_videos_removed(tmp_path):
    frames = {
        "a": VideoFrameInfo("a", "/a", "f_", 8, 0, 20, "jpg"),  # 20 frames for 2 s at 10 fps: kept
        "b": VideoFrameInfo("b", "/b", "f_", 8, 0, 5, "jpg"),  # 5 frames for 2 s: incomplete, removed
        "d": VideoFrameInfo("d", "/d", "f_", 8, 0, 20, "jpg"),  # no metadata: removed
    }
    saved = save_video_frame_info(frames, str(tmp_path / "frames.csv"))
    loaded = load_dataclass_dict_from_csv(saved, VideoFrameInfo, "video_id")
    assert loaded == frames
    infos = {k: VideoInfo(k, "r", 2.0, 10.0) for k in ("a", "b", "c")}  # "c" has no frames: removed
    VideoDataset._remove_video_info_missing_or_incomplete_videos(loaded, infos)
    assert list(loaded) == list(infos) == ["a"]
    encoded = save_encoded_video_manifest({"v": EncodedVideoInfo("v", "/x y.mp4")}, str(tmp_path / "enc.csv"))
    assert load_dataclass_dict_from_csv(encoded, EncodedVideoInfo, "video_id")["v"].file_path == "/x y.mp4"


def test_csv_loader_errors_name_the_problem(tmp_path):
    (tmp_path / "dup.csv").write_text("video_id,file_path\nv,a\nv,b\n")
    with pytest.raises(ValueError, match="duplicate video_id 'v'"):
        load_dataclass_dict_from_csv(str(tmp_path / "dup.csv"), EncodedVideoInfo, "video_id")
    assert len(load_dataclass_dict_from_csv(str(tmp_path / "dup.csv"), EncodedVideoInfo, "video_id", list_per_key=True)["v"]) == 2
    (tmp_path / "cols.csv").write_text("video_id\nv\n")
    with pytest.raises(ValueError, match="lacks columns"):
        load_dataclass_dict_from_csv(str(tmp_path / "cols.csv"), EncodedVideoInfo, "video_id")


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_epic_kitchen_manifest_builders(tmp_path):
    for i in (1, 2, 3):
        touch(tmp_path / "nested" / "P01" / f"P01_01_{i:010d}.jpg")
    touch(tmp_path / "nested" / "P01" / "P01_02_0000000005.jpg")
    nested = build_frame_manifest_from_nested_directory(str(tmp_path / "nested"), multithreaded=True)
    assert nested["P01_01"] == VideoFrameInfo("P01_01", f"{tmp_path}/nested/P01", "P01_01_", 17, 1, 3, "jpg")
    assert (nested["P01_02"].min_frame_number, nested["P01_02"].max_frame_number) == (5, 5)

    for i in (0, 1):
        touch(tmp_path / "flat" / "vid" / f"frame_{i:04d}.png")
    flat = build_frame_manifest_from_flat_directory(str(tmp_path / "flat"), multithreaded=False)
    assert flat == {"vid": VideoFrameInfo("vid", f"{tmp_path}/flat/vid", "frame_", 10, 0, 1, "png")}

    touch(tmp_path / "flat" / "vid" / "frame_0003.png")  # frame 2 missing
    with pytest.raises(ValueError, match="consecutive"):
        build_frame_manifest_from_flat_directory(str(tmp_path / "flat"), multithreaded=True)

    touch(tmp_path / "enc" / "P02" / "P02_03.MP4")
    assert build_encoded_manifest_from_nested_directory(str(tmp_path / "enc")) == {
        "P02_03": EncodedVideoInfo("P02_03", f"{tmp_path}/enc/P02/P02_03.MP4")
    }


class Duration:
    def __init__(self, duration):
        self.duration = duration


def action(video, start, stop):
    return ActionData("P01", video, "n", start, stop, 0, 0, "v", 0, "n", 0, "[]", "[]")


def test_epic_recognition_clip_structure_and_frame_filter():
    define = EpicKitchenRecognition._define_clip_structure_generator(2.0, ClipSampling.RandomOffsetUniform)
    torch.manual_seed(0)
    offset = torch.rand(()).item() * 2.0
    torch.manual_seed(0)
    clips = define({"v": Duration(7)}, {})
    assert len(clips) == int((7 - offset) // 2)
    assert [c.start_time for c in clips] == pytest.approx([offset + 2 * i for i in range(len(clips))])
    assert all(c.stop_time - c.start_time == pytest.approx(2.0) for c in clips)
    assert EpicKitchenRecognition._frame_filter_generator(4)(list(range(10))) == [0, 2, 4, 6, 8]
    keep = EpicKitchenRecognition._transform_generator(None)(
        {"actions": [action("v", "00:00:00.0", "00:00:01.0"), action("v", "00:00:05.0", "00:00:06.0")],
         "start_time": 0.5, "stop_time": 2.5, "audio": None}
    )
    assert len(keep["actions"]) == 1 and keep["audio"].numel() == 0


def test_epic_forecasting_clips_filters_and_transform():
    actions = {"v": [action("v", "00:00:00.0", "00:00:01.0"), action("v", "00:00:11.0", "00:00:12.0"),
                     action("v", "00:00:12.5", "00:00:20.0"), action("v", "00:00:13.0", "00:00:14.0")]}
    define = EpicKitchenForecasting._define_clip_structure_generator(ForecastClipSampling.Random, 2.0, 10.0, 1, 1)
    # only the 11-12 s action has a later-starting action and 2 s of video before it
    assert [(c.video_id, c.start_time, c.stop_time) for c in define({}, actions)] == [("v", 10.0, 12.0)]
    # 2 input clips of 2 frames, 10 s apart, in a 12 s window of 120 frames (10 fps; 1 fps wanted)
    assert EpicKitchenForecasting._frame_filter_generator(2, 2.0, 10.0, 2)(list(range(120))) == [0, 10, 100, 110]
    transform = EpicKitchenForecasting._transform_generator(None, 1, 2, 2)
    clip = transform({"video_id": "v", "video": torch.arange(4.0).view(1, 4, 1, 1), "actions": actions["v"],
                      "stop_time": 12.0})
    assert clip["video"].shape == (2, 1, 2, 1, 1) and clip["video"][1].flatten().tolist() == [2.0, 3.0]
    assert [a.start_time for a in clip["actions"]] == [12.5]


def test_domsev_time_helpers_and_frame_labels():
    assert _seconds_to_frame_index(2.75, 10) == 27 and _seconds_to_frame_index(2.75, 10, zero_indexed=False) == 28
    assert _get_overlap_for_time_range_pair(0, 5, 3, 8) == (3, 5)
    assert _get_overlap_for_time_range_pair(0, 2, 3, 8) is None
    frames = {f"f{i}": ImageFrameInfo("v", f"f{i}", i, f"/v/f{i}.jpg") for i in range(6)}
    labels = {"v": [LabelData("v", 0, 0.3, 0, 2, 1, "indoor"), LabelData("v", 0.3, 0.5, 3, 4, 4, "urban")]}
    assert DomsevFrameDataset._assign_labels_to_frames(frames, labels) == {"f0": 1, "f1": 1, "f2": 1, "f3": 4, "f4": 4}
