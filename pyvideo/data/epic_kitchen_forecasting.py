"""Epic-Kitchens action forecasting: from the video before an action, predict the next actions."""
from enum import Enum
from typing import Any, Callable, Dict, List, Optional

import torch

from .epic_kitchen import ActionData, EpicKitchenClip, EpicKitchenDataset, EpicKitchenDatasetType
from .epic_kitchen_recognition import none_to_empty_tensor


class ClipSampling(Enum):
    Random = 1


class EpicKitchenForecasting(EpicKitchenDataset):
    """One item per action that is followed by ``num_forecast_actions`` later-starting actions: the
    input window of ``seconds_per_clip + (num_input_clips - 1) * clip_time_stride`` seconds ends where
    the action ends; ``actions`` are the next ``num_forecast_actions`` actions and ``video`` is
    ``[num_input_clips, C, frames_per_clip, H, W]``."""

    def __init__(
        self,
        video_info_file_path: str,
        actions_file_path: str,
        video_data_manifest_file_path: str,
        clip_sampling: ClipSampling = ClipSampling.Random,
        dataset_type: EpicKitchenDatasetType = EpicKitchenDatasetType.Frame,
        seconds_per_clip: float = 2.0,
        clip_time_stride: float = 10.0,
        num_input_clips: int = 1,
        frames_per_clip: Optional[int] = None,
        num_forecast_actions: int = 1,
        transform: Callable[[Dict[str, Any]], Any] = None,
        multithreaded_io: bool = True,
    ):
        if frames_per_clip is None:
            raise ValueError("EpicKitchenForecasting needs frames_per_clip to split the window into input clips")
        super().__init__(
            video_info_file_path=video_info_file_path,
            actions_file_path=actions_file_path,
            video_data_manifest_file_path=video_data_manifest_file_path,
            dataset_type=dataset_type,
            transform=EpicKitchenForecasting._transform_generator(
                transform, num_forecast_actions, frames_per_clip, num_input_clips
            ),
            frame_filter=EpicKitchenForecasting._frame_filter_generator(
                frames_per_clip, seconds_per_clip, clip_time_stride, num_input_clips
            ),
            clip_sampler=EpicKitchenForecasting._define_clip_structure_generator(
                clip_sampling, seconds_per_clip, clip_time_stride, num_input_clips, num_forecast_actions
            ),
            multithreaded_io=multithreaded_io,
        )

    @staticmethod
    def _transform_generator(transform, num_forecast_actions: int, frames_per_clip: int, num_input_clips: int):
        def transform_clip(clip: Dict[str, Any]) -> Dict[str, Any]:
            actions = sorted(clip["actions"], key=lambda a: a.start_time)
            clip["actions"] = [a for a in actions if a.start_time > clip["stop_time"]][:num_forecast_actions]
            video = clip["video"]
            if video.shape[1] != num_input_clips * frames_per_clip:
                raise RuntimeError(
                    f"video {clip['video_id']}: got {video.shape[1]} frames for {num_input_clips} clips of {frames_per_clip}"
                )
            clip["video"] = torch.stack(video.split(frames_per_clip, dim=1))
            clip = none_to_empty_tensor(clip)
            return transform(clip) if transform else clip

        return transform_clip

    @staticmethod
    def _frame_filter_generator(frames_per_clip: int, seconds_per_clip: float, clip_time_stride: float, num_input_clips: int):
        window = seconds_per_clip + (num_input_clips - 1) * clip_time_stride
        wanted_fps = frames_per_clip / seconds_per_clip

        def frame_filter(frame_indices: List[int]) -> List[int]:
            available_fps = len(frame_indices) / window
            stride = max(1, int(available_fps // wanted_fps))
            selected = set()
            for i in range(num_input_clips):
                first = int(i * clip_time_stride * available_fps)
                selected.update(first + j * stride for j in range(frames_per_clip))
            return [x for i, x in enumerate(frame_indices) if i in selected]

        return frame_filter

    @staticmethod
    def _define_clip_structure_generator(
        clip_sampling: ClipSampling, seconds_per_clip: float, clip_time_stride: float, num_input_clips: int,
        num_forecast_actions: int,
    ) -> Callable[[Dict[str, Any], Dict[str, List[ActionData]]], List[EpicKitchenClip]]:
        if clip_sampling != ClipSampling.Random:
            raise NotImplementedError(f"Only {ClipSampling.Random} is implemented, not {clip_sampling}.")
        window = seconds_per_clip + (num_input_clips - 1) * clip_time_stride

        def define_clip_structure(videos, video_actions: Dict[str, List[ActionData]]) -> List[EpicKitchenClip]:
            clips = []
            for video_id, actions in video_actions.items():
                for i, action in enumerate(actions):
                    later = [a for a in actions[i + 1 :] if a.start_time > action.stop_time]
                    # the whole input window must lie inside the video
                    if len(later) >= num_forecast_actions and action.start_time - window >= 0:
                        clips.append(EpicKitchenClip(video_id, action.stop_time - window, action.stop_time))
            return clips

        return define_clip_structure
