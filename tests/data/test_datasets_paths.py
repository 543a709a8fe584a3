"""Annotation parsing of the path-list datasets (Kinetics, UCF101, HMDB51, JSON) on fixture trees the
tests build; decoding is replaced by FakeVideos so only the dataset logic is under test."""
import json
import os

import pytest
import torch

from pyvideo.data import Hmdb51, Kinetics, LabeledVideoPaths, Ucf101, make_clip_sampler
from pyvideo.data.hmdb51 import Hmdb51LabeledVideoPaths
from pyvideo.data.json_dataset import UntrimmedClipSampler, clip_recognition_dataset, video_only_dataset

from .fake_video import FakeVideoPathHandler


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_csv_paths_with_spaces_and_int_str_missing_labels(tmp_path):
    csv = write(tmp_path / "list.txt", "a/b c.mp4 3\n\nx y z.avi  walking\nno_label.mp4\n")
    paths = LabeledVideoPaths.from_path(str(csv))
    assert len(paths) == 3
    assert paths[0] == ("a/b c.mp4", {"label": 3})
    assert paths[1] == ("x y z.avi", {"label": "walking"})
    assert paths[2] == ("no_label.mp4", {"label": -1})
    paths.path_prefix = "/data dir"
    assert paths[0][0] == "/data dir/a/b c.mp4"
    with pytest.raises(AttributeError):
        paths.path_prefix  # write-only, as upstream
    with pytest.raises(ValueError, match="no video paths"):
        LabeledVideoPaths.from_csv(str(write(tmp_path / "empty.txt", "\n\n")))
    with pytest.raises(FileNotFoundError):
        LabeledVideoPaths.from_path(str(tmp_path / "nope"))


def test_directory_classes_are_sorted_folders_with_video_files(tmp_path):
    for rel in ["b_class/v1.mp4", "a class/sub/v2.AVI", "a class/v3.avi", "a class/notes.txt", "c_empty/x.jpg"]:
        write(tmp_path / "root" / rel, "")
    paths = LabeledVideoPaths.from_directory(str(tmp_path / "root"))
    got = [(os.path.relpath(p, tmp_path / "root"), info["label"]) for p, info in (paths[i] for i in range(len(paths)))]
    # classes: "a class"=0, "b_class"=1, "c_empty"=2 (no videos)
    assert got == [("a class/v3.avi", 0), ("a class/sub/v2.AVI", 0), ("b_class/v1.mp4", 1)]


def test_dict_labels_are_the_info_dict():
    paths = LabeledVideoPaths([("v.mp4", {"label": 1, "subject": "s1"}), ("w.mp4", 2)])
    assert paths[0] == ("v.mp4", {"label": 1, "subject": "s1"})
    assert paths[1] == ("w.mp4", {"label": 2})


@pytest.mark.parametrize("dataset_fn", [Kinetics, Ucf101])
def test_kinetics_and_ucf101_yield_labelled_clips(tmp_path, dataset_fn):
    csv = write(tmp_path / "train.csv", "dance/v 1.mp4 0\nsing/v2.mp4 1\n")
    data = dataset_fn(
        data_path=str(csv), clip_sampler=make_clip_sampler("uniform", 1), video_path_prefix="/videos",
        video_sampler=torch.utils.data.SequentialSampler, decode_audio=False,
    )
    data.video_path_handler = FakeVideoPathHandler({"/videos/dance/v 1.mp4": 2, "/videos/sing/v2.mp4": 1})
    samples = list(data)
    assert [(s["video_name"], s["label"], s["clip_index"]) for s in samples] == [
        ("/videos/dance/v 1.mp4", 0, 0), ("/videos/dance/v 1.mp4", 0, 1), ("/videos/sing/v2.mp4", 1, 0)
    ]
    assert samples[1]["clip_start_sec"] == 1.0 and samples[1]["video"].shape == (1, 10, 2, 2)
    assert data.num_videos == 2


def hmdb_splits(tmp_path):
    # video name tags: <name>_<tag1>..<tag5>_<id>.avi
    write(tmp_path / "splits" / "brush_hair_test_split1.txt", "A_brush_h_nm_np1_ba_goo_0.avi 1\nB_brush_h_nm_np1_ba_goo_1.avi 2\n")
    write(tmp_path / "splits" / "cartwheel_test_split1.txt", "C_cart_f_cm_np1_le_med_0.avi 1\nD_cart_f_cm_np1_le_med_1.avi 0\n")
    write(tmp_path / "splits" / "cartwheel_test_split2.txt", "C_cart_f_cm_np1_le_med_0.avi 2\n")
    return tmp_path / "splits"


def test_hmdb51_reads_the_requested_split_and_type(tmp_path):
    splits = hmdb_splits(tmp_path)
    train = Hmdb51LabeledVideoPaths.from_dir(str(splits), split_id=1, split_type="train")
    assert [train[i] for i in range(len(train))] == [
        ("brush_hair/A_brush_h_nm_np1_ba_goo_0.avi", {"label": "brush_hair", "meta_tags": ["h", "nm", "np1", "ba", "goo"]}),
        ("cartwheel/C_cart_f_cm_np1_le_med_0.avi", {"label": "cartwheel", "meta_tags": ["f", "cm", "np1", "le", "med"]}),
    ]
    test = Hmdb51LabeledVideoPaths.from_dir(str(splits), split_id=2, split_type="test")
    assert [test[i][0] for i in range(len(test))] == ["cartwheel/C_cart_f_cm_np1_le_med_0.avi"]
    unused = Hmdb51LabeledVideoPaths.from_dir(str(splits), split_id=1, split_type="unused")
    assert unused[0][1]["label"] == "cartwheel" and len(unused) == 1
    with pytest.raises(ValueError, match="split_id"):
        Hmdb51LabeledVideoPaths.from_dir(str(splits), split_id=4)
    with pytest.raises(ValueError, match="split_type"):
        Hmdb51LabeledVideoPaths.from_dir(str(splits), split_type="val")
    with pytest.raises(FileNotFoundError):
        Hmdb51LabeledVideoPaths.from_dir(str(tmp_path / "missing"))


def test_hmdb51_dataset_samples_carry_action_label_and_tags(tmp_path):
    data = Hmdb51(data_path=str(hmdb_splits(tmp_path)), clip_sampler=make_clip_sampler("random", 1), video_path_prefix="/v",
                  video_sampler=torch.utils.data.SequentialSampler, decode_audio=False)
    data.video_path_handler = FakeVideoPathHandler(
        {"/v/brush_hair/A_brush_h_nm_np1_ba_goo_0.avi": 3, "/v/cartwheel/C_cart_f_cm_np1_le_med_0.avi": 3}
    )
    assert [(s["label"], s["meta_tags"][0]) for s in data] == [("brush_hair", "h"), ("cartwheel", "f")]


def test_video_only_dataset_uses_json_keys(tmp_path):
    annotations = write(tmp_path / "a.json", json.dumps({"v1.mp4": {"x": 1}, "v 2.mp4": {}}))
    data = video_only_dataset(str(annotations), make_clip_sampler("uniform", 2), torch.utils.data.SequentialSampler,
                              video_path_prefix="/root", decode_audio=False)
    data.video_path_handler = FakeVideoPathHandler({"/root/v1.mp4": 2, "/root/v 2.mp4": 4})
    assert [(s["video_name"], s["clip_index"]) for s in data] == [("/root/v1.mp4", 0), ("/root/v 2.mp4", 0), ("/root/v 2.mp4", 1)]
    with pytest.raises(ValueError, match="not valid JSON"):
        video_only_dataset(str(write(tmp_path / "bad.json", "{")), make_clip_sampler("uniform", 2))


def segment(start, end, noun, verb, unsure=False):
    return {"critical_frame_selection_parent_start_sec": start, "critical_frame_selection_parent_end_sec": end,
            "taxonomy": {"noun": noun, "verb": verb, "noun_unsure": unsure, "verb_unsure": False}}


def test_clip_recognition_dataset_samples_inside_segments(tmp_path):
    annotations = {"v.mp4": {"benchmarks": {"forecasting_hands_objects": [
        segment(2, 4, "knife", "cut"), segment(5, 6, "bowl", "wash"), segment(1, 3, "cup", "take", unsure=True),
        segment(7, 8, None, "cut"),
    ]}}}
    path = write(tmp_path / "e.json", json.dumps(annotations))
    data = clip_recognition_dataset(str(path), make_clip_sampler("uniform", 1), torch.utils.data.SequentialSampler,
                                    decode_audio=False)
    data.video_path_handler = FakeVideoPathHandler({"v.mp4": 10})
    got = [(s["clip_start_sec"], s["clip_end_sec"], s["noun_label"], s["verb_label"]) for s in data]
    # nouns sorted: bowl=0, knife=1; verbs: cut=0, wash=1; segment [2,4] gives clips [2,3) [3,4)
    assert got == [(2.0, 3.0, 1, 0), (3.0, 4.0, 1, 0), (5.0, 6.0, 0, 1)]


def test_untrimmed_clip_sampler_offsets_into_the_segment():
    sampler = UntrimmedClipSampler(make_clip_sampler("constant_clips_per_video", 1, 2))
    clips = [sampler(None, 100, {"clip_start_sec": 10, "clip_end_sec": 14}) for _ in range(2)]
    assert [(c.clip_start_sec, c.clip_end_sec) for c in clips] == [(10, 11), (13, 14)]
    with pytest.raises(ValueError, match="ends before it starts"):
        sampler(None, 100, {"clip_start_sec": 5, "clip_end_sec": 4})
