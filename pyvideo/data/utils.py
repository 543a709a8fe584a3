"""Helpers shared by pyvideo.data.

Two owners edit this file: the decoding helpers (thwc_to_cthw, secs_to_pts, pts_to_secs,
export_video_array) and the dataset helpers below. Keep each group in its own section.
"""
import csv
import logging
import math
import os
import sys
import threading
from collections import defaultdict
from dataclasses import Field, field as dataclass_field, fields as dataclass_fields
from typing import Any, Callable, Dict, Iterable, Iterator, List, Sequence, Tuple, Union

import torch
import torch.utils.data

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# Decoding helpers: layout, timestamps, and writing videos (owned with pyvideo/data/encoded_video*.py)
# ----------------------------------------------------------------------------------------------


def thwc_to_cthw(data: torch.Tensor) -> torch.Tensor:
    """Permute a [T, H, W, C] tensor to [C, T, H, W] (a view, no copy)."""
    if data.dim() != 4:
        raise ValueError(f"expected a 4-D [T, H, W, C] tensor, got shape {tuple(data.shape)}")
    return data.permute(3, 0, 1, 2)


def secs_to_pts(time_in_seconds: float, time_base: float, start_pts: int, round_mode: str = "floor") -> int:
    """Seconds to a stream timestamp: ``start_pts + floor|ceil(seconds / time_base)``; infinity stays infinity."""
    if round_mode not in ("floor", "ceil"):
        raise ValueError(f"round_mode must be 'floor' or 'ceil', not {round_mode!r}")
    if time_in_seconds == math.inf:
        return math.inf
    ticks = time_in_seconds / float(time_base)
    return (math.floor(ticks) if round_mode == "floor" else math.ceil(ticks)) + start_pts


def pts_to_secs(pts: int, time_base: float, start_pts: int) -> float:
    """A stream timestamp to seconds after the stream's start; infinity stays infinity."""
    if pts == math.inf:
        return math.inf
    return int(pts - start_pts) * float(time_base)


def export_video_array(video, output_path: str, rate: float, bit_rate: int = None, pix_fmt: str = None,
                       height: int = None, width: int = None, in_format: str = "rgb24", out_format: str = "bgr24",
                       video_codec: str = "mpeg4", options: Dict[str, str] = None) -> None:
    """Write a [C, T, H, W] clip (uint8, or float 0-255) to ``output_path`` with FFmpeg (the container follows the
    extension). ``in_format`` says the channel order of ``video`` ("rgb24" or "bgr24"). ``out_format`` is accepted
    for compatibility: PyTorchVideo passed frames through it on their way to the encoder's ``pix_fmt``, which does
    not change the written colours. ``video_codec`` is an FFmpeg encoder or codec name ("mpeg4", "h264"/"libx264",
    "vp9", ...); ``pix_fmt`` defaults to yuv420p where the encoder takes it; ``height``/``width`` resize; ``options``
    go to the encoder (e.g. ``{"crf": "18"}``)."""
    from pyvideo.data.encoded_video_native import native_decode

    formats = ("rgb24", "bgr24")
    if in_format not in formats or out_format not in formats:
        raise ValueError(f"in_format and out_format must be 'rgb24' or 'bgr24', got {in_format!r}, {out_format!r}")
    frames = torch.as_tensor(video)
    if frames.dim() != 4 or frames.shape[0] != 3:
        raise ValueError(f"video must be [C=3, T, H, W], got shape {tuple(frames.shape)}")
    if frames.dtype != torch.uint8:
        frames = frames.float().round().clamp(0, 255).to(torch.uint8)
    frames = frames.permute(1, 2, 3, 0).contiguous()  # [T, H, W, 3] packed rows, as the encoder reads them
    native_decode().encode_video(
        os.fspath(output_path), frames, fps=float(rate), codec=video_codec, bit_rate=int(bit_rate or 0),
        pixel_format=pix_fmt or "", width=int(width or 0), height=int(height or 0),
        input_is_bgr=in_format == "bgr24", codec_options={str(k): str(v) for k, v in (options or {}).items()})


# ----------------------------------------------------------------------------------------------
# Dataset helpers: splitting work across DataLoader workers and ranks, threaded I/O, dataclass CSVs
# ----------------------------------------------------------------------------------------------


def _without_distributed_padding(sampler: torch.utils.data.Sampler, indices: List[int]) -> List[int]:
    """Drop the indices a ``DistributedSampler`` repeats to give every rank the same length.

    Rank r takes positions r, r + R, r + 2R, ... of the padded epoch list, and positions >= len(dataset)
    are the repeats; keeping them would produce those videos twice per epoch across ranks.
    """
    if not isinstance(sampler, torch.utils.data.DistributedSampler) or sampler.drop_last:
        return indices
    num_items = len(sampler.dataset)
    return [index for k, index in enumerate(indices) if sampler.rank + k * sampler.num_replicas < num_items]


class MultiProcessSampler(torch.utils.data.Sampler):
    """Wraps a sampler so each DataLoader worker iterates a disjoint share of its indices.

    All workers draw the same epoch order from the wrapped sampler (datasets seed it identically per
    worker) and worker w keeps positions w, w + W, w + 2W, ... so the union over workers is exactly the
    sampler's epoch, each index once. A ``DistributedSampler``'s padding repeats are dropped first.
    """

    def __init__(self, sampler: torch.utils.data.Sampler) -> None:
        self._sampler = sampler

    def __iter__(self) -> Iterator[int]:
        indices = _without_distributed_padding(self._sampler, list(iter(self._sampler)))
        worker_info = torch.utils.data.get_worker_info()
        if worker_info is None or worker_info.num_workers <= 1:
            return iter(indices)
        if worker_info.id >= len(indices):
            logger.warning(
                "More DataLoader workers (%d) than videos (%d) for this rank; worker %d is idle.",
                worker_info.num_workers, len(indices), worker_info.id,
            )
        return iter(indices[worker_info.id :: worker_info.num_workers])

    def __len__(self) -> int:
        return len(self._sampler)


def optional_threaded_foreach(target: Callable, args_iterable: Iterable[Tuple], multithreaded: bool) -> None:
    """Call ``target(*args)`` for each tuple in ``args_iterable``, one thread each when ``multithreaded``.

    An exception in any call is re-raised in the caller after all threads finished.
    """
    if not multithreaded:
        for args in args_iterable:
            target(*args)
        return
    errors = []

    def run(args):
        try:
            target(*args)
        except BaseException as error:  # re-raised below, in the calling thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(args,)) for args in args_iterable]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class DataclassFieldCaster:
    """Mixin for ``@dataclass`` classes: after ``__init__`` each field is cast to its declared type.

    A field declared with ``complex_initialized_dataclass_field(fn)`` is set to ``fn(value)`` instead,
    which must return the declared type. CSV readers rely on this to turn strings into ints/floats.
    """

    COMPLEX_INITIALIZER = "DataclassFieldCaster__complex_initializer"

    def __post_init__(self) -> None:
        for item in dataclass_fields(self):
            value = getattr(self, item.name)
            initializer = item.metadata.get(DataclassFieldCaster.COMPLEX_INITIALIZER)
            if initializer is not None:
                value = initializer(value)
                if not isinstance(value, item.type):
                    raise TypeError(
                        f"field_initializer of {item.name!r} must return {item.type.__name__}, "
                        f"returned {type(value).__name__}"
                    )
            elif not isinstance(value, item.type):
                try:
                    value = item.type(value)
                except (TypeError, ValueError) as error:
                    raise ValueError(
                        f"{type(self).__name__}.{item.name}: cannot convert {value!r} to {item.type.__name__}"
                    ) from error
            setattr(self, item.name, value)

    @staticmethod
    def complex_initialized_dataclass_field(field_initializer: Callable, **kwargs) -> Field:
        """A dataclass field whose value is replaced by ``field_initializer(value)`` after init."""
        metadata = dict(kwargs.pop("metadata", None) or {})
        if DataclassFieldCaster.COMPLEX_INITIALIZER in metadata:
            raise ValueError("the field already has a complex initializer")
        metadata[DataclassFieldCaster.COMPLEX_INITIALIZER] = field_initializer
        return dataclass_field(metadata=metadata, **kwargs)


def load_dataclass_dict_from_csv(
    input_csv_file_path: str,
    dataclass_class: type,
    dict_key_field: str,
    list_per_key: bool = False,
) -> Dict[Any, Union[Any, List[Any]]]:
    """Read a headered CSV into ``dataclass_class`` rows keyed by ``dict_key_field``.

    Columns are matched by header name (order and extra columns do not matter). With ``list_per_key``
    each key maps to the list of its rows; otherwise keys must be unique.
    """
    field_names = [item.name for item in dataclass_fields(dataclass_class)]
    output: Dict[Any, Any] = defaultdict(list) if list_per_key else {}
    with open(input_csv_file_path, newline="") as csv_file:
        reader = csv.reader(csv_file, delimiter=",", quotechar='"')
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{input_csv_file_path} is empty; expected a header with {field_names}")
        column = {name: i for i, name in enumerate(header)}
        missing = [name for name in field_names if name not in column]
        if missing:
            raise ValueError(f"{input_csv_file_path} lacks columns {missing} (header: {header})")
        for line_number, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                datum = dataclass_class(*(row[column[name]] for name in field_names))
            except (IndexError, ValueError, TypeError, SyntaxError) as error:
                raise ValueError(f"{input_csv_file_path}:{line_number}: bad row {row}: {error}") from error
            key = getattr(datum, dict_key_field)
            if list_per_key:
                output[key].append(datum)
            elif key in output:
                raise ValueError(f"{input_csv_file_path}:{line_number}: duplicate {dict_key_field} {key!r}")
            else:
                output[key] = datum
    return dict(output) if list_per_key else output


def save_dataclass_objs_to_headered_csv(dataclass_objs: Sequence[Any], file_name: str) -> None:
    """Write dataclass objects as CSV rows under a header of their field names."""
    if not dataclass_objs:
        raise ValueError("no dataclass objects to save")
    field_names = [item.name for item in dataclass_fields(type(dataclass_objs[0]))]
    with open(file_name, "w", newline="") as csv_file:
        writer = csv.writer(csv_file, delimiter=",", quotechar='"')
        writer.writerow(field_names)
        for obj in dataclass_objs:
            writer.writerow([getattr(obj, name) for name in field_names])


def get_logger(name: str) -> logging.Logger:
    """An INFO-level logger printing to stdout with time and source location."""
    named_logger = logging.getLogger(name)
    named_logger.setLevel(logging.INFO)
    if not named_logger.hasHandlers():
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            logging.Formatter(
                "[%(asctime)s] %(levelname)s %(message)s \t[%(filename)s.%(funcName)s:%(lineno)d]",
                datefmt="%y%m%d %H:%M:%S",
            )
        )
        named_logger.addHandler(handler)
    return named_logger
