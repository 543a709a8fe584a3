"""Datasets described by JSON files (Ego4D-style annotations)."""
import json
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from .clip_sampling import ClipInfo, ClipSampler
from .labeled_video_dataset import LabeledVideoDataset, VideoSamplerArg, reset_clip_sampler


def _load_json_object(data_path: str) -> Dict[str, Any]:
    if not os.path.isfile(data_path):
        raise FileNotFoundError(f"{data_path} not found.")
    try:
        with open(data_path) as f:
            annotations = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f"{data_path} is not valid JSON: {error}") from error
    if not isinstance(annotations, dict):
        raise ValueError(f"{data_path} must hold a JSON object keyed by video name")
    return annotations


def video_only_dataset(
    data_path: str,
    clip_sampler: ClipSampler,
    video_sampler: VideoSamplerArg = torch.utils.data.RandomSampler,
    transform: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None,
    video_path_prefix: str = "",
    decode_audio: bool = True,
    decoder: str = "native",
) -> LabeledVideoDataset:
    """Clips without labels from every video named by a key of the JSON object in ``data_path``."""
    annotations = _load_json_object(data_path)
    video_paths = [(os.path.join(video_path_prefix, name), {}) for name in annotations]
    return LabeledVideoDataset(video_paths, clip_sampler, video_sampler, transform, decode_audio=decode_audio, decoder=decoder)


def _label_to_index(entries: List[Tuple[str, Dict[str, Any]]], key: str) -> None:
    # sorted names give the same ids in every process and run (upstream iterated a set)
    names = sorted({info[key] for _, info in entries}, key=str)
    index = {name: i for i, name in enumerate(names)}
    for _, info in entries:
        info[key] = index[info[key]]


def clip_recognition_dataset(
    data_path: str,
    clip_sampler: ClipSampler,
    video_sampler: VideoSamplerArg = torch.utils.data.RandomSampler,
    transform: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None,
    video_path_prefix: str = "",
    decode_audio: bool = True,
    decoder: str = "native",
) -> LabeledVideoDataset:
    """Clips from Ego4D ``forecasting_hands_objects`` annotations with noun/verb labels.

    Each annotated segment [critical_frame_selection_parent_start_sec, ..._end_sec] becomes one entry;
    segments with a missing or unsure noun/verb are left out. ``noun_label``/``verb_label`` are mapped
    to indices in sorted name order. Clips are sampled inside each segment.
    """
    annotations = _load_json_object(data_path)
    entries: List[Tuple[str, Dict[str, Any]]] = []
    for video_name, child in annotations.items():
        video_path = os.path.join(video_path_prefix, video_name)
        for segment in child["benchmarks"]["forecasting_hands_objects"]:
            taxonomy = segment["taxonomy"]
            if taxonomy["noun"] is None or taxonomy["verb"] is None or taxonomy["verb_unsure"] or taxonomy["noun_unsure"]:
                continue
            entries.append(
                (
                    video_path,
                    {
                        "clip_start_sec": segment["critical_frame_selection_parent_start_sec"],
                        "clip_end_sec": segment["critical_frame_selection_parent_end_sec"],
                        "noun_label": taxonomy["noun"],
                        "verb_label": taxonomy["verb"],
                    },
                )
            )
    _label_to_index(entries, "noun_label")
    _label_to_index(entries, "verb_label")
    return LabeledVideoDataset(
        entries, UntrimmedClipSampler(clip_sampler), video_sampler, transform, decode_audio=decode_audio, decoder=decoder
    )


class UntrimmedClipSampler:
    """Samples with ``clip_sampler`` inside the annotated segment [clip_start_sec, clip_end_sec] of
    the annotation instead of the whole video, then shifts the clip to video time."""

    def __init__(self, clip_sampler: ClipSampler) -> None:
        self._trimmed_clip_sampler = clip_sampler

    def __call__(self, last_clip_time, video_duration, clip_info: Dict[str, Any]) -> ClipInfo:
        segment_start = clip_info["clip_start_sec"]
        segment_duration = clip_info["clip_end_sec"] - segment_start
        if segment_duration < 0:
            raise ValueError(f"annotated segment ends before it starts: {clip_info}")
        last_in_segment = None if last_clip_time is None else last_clip_time - segment_start
        clip = self._trimmed_clip_sampler(last_in_segment, segment_duration, clip_info)
        return ClipInfo(
            clip.clip_start_sec + segment_start,
            clip.clip_end_sec + segment_start,
            clip.clip_index,
            clip.aug_index,
            clip.is_last_clip,
        )

    def reset(self) -> None:
        reset_clip_sampler(self._trimmed_clip_sampler)
