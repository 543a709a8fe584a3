"""LabeledVideoPaths: the (video path, label info) list a LabeledVideoDataset iterates over."""
import os
import pathlib
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

VIDEO_EXTENSIONS = (".mp4", ".avi")


def _parse_label(text: str) -> Any:
    """Integer labels stay ints (the Kinetics/UCF convention); anything else is kept as a string."""
    try:
        return int(text)
    except ValueError:
        return text


def label_info(label: Any) -> Dict[str, Any]:
    """The info dict of one video: a mapping is used as is, any other label becomes ``{"label": label}``."""
    return dict(label) if isinstance(label, Mapping) else {"label": label}


class LabeledVideoPaths:
    """Pairs of video path and label; ``self[i]`` gives ``(path_prefix/path, info_dict)``.

    Labels may be ints, strings or dicts (a dict label is the info dict itself, e.g.
    ``{"label": 3, "subject": "s1"}``).
    """

    @classmethod
    def from_path(cls, data_path: str) -> "LabeledVideoPaths":
        """A file is read with ``from_csv``, a directory with ``from_directory``."""
        if os.path.isfile(data_path):
            return cls.from_csv(data_path)
        if os.path.isdir(data_path):
            return cls.from_directory(data_path)
        raise FileNotFoundError(f"{data_path} not found.")

    @classmethod
    def from_csv(cls, file_path: str) -> "LabeledVideoPaths":
        """Read lines of ``<path> <label>``, split on the last whitespace so paths may contain spaces.

        A line with a single token is a path without label (label -1, e.g. a test split). Blank
        lines are ignored.
        """
        if not os.path.isfile(file_path):
            raise FileNotFoundError(f"{file_path} not found.")
        paths_and_labels = []
        with open(file_path) as lines:
            for line in lines:
                line = line.strip()
                if not line:
                    continue
                parts = line.rsplit(None, 1)
                if len(parts) == 1:
                    paths_and_labels.append((parts[0], -1))
                else:
                    paths_and_labels.append((parts[0], _parse_label(parts[1])))
        if not paths_and_labels:
            raise ValueError(f"Failed to load dataset from {file_path}: no video paths in it.")
        return cls(paths_and_labels)

    @classmethod
    def from_directory(cls, dir_path: str) -> "LabeledVideoPaths":
        """Each sub-folder of ``dir_path`` is a class, indexed 0..N-1 in sorted name order; every
        .mp4/.avi below it (any depth) is a video of that class."""
        root = pathlib.Path(dir_path)
        if not root.is_dir():
            raise FileNotFoundError(f"{dir_path} not found.")
        classes = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
        paths_and_labels = []
        for class_index, class_name in enumerate(classes):
            for folder, _, file_names in sorted(os.walk(root / class_name, followlinks=True)):
                for file_name in sorted(file_names):
                    if file_name.lower().endswith(VIDEO_EXTENSIONS):
                        paths_and_labels.append((os.path.join(folder, file_name), class_index))
        if not paths_and_labels:
            raise ValueError(f"Failed to load dataset from {dir_path}: no {VIDEO_EXTENSIONS} files in class folders.")
        return cls(paths_and_labels)

    def __init__(self, paths_and_labels: Sequence[Tuple[str, Optional[Any]]], path_prefix: str = "") -> None:
        self._paths_and_labels = list(paths_and_labels)
        self._path_prefix = path_prefix

    def _set_path_prefix(self, prefix: str) -> None:
        self._path_prefix = prefix

    path_prefix = property(None, _set_path_prefix, doc="Write-only: a folder prepended to every path.")

    def __getitem__(self, index: int) -> Tuple[str, Dict[str, Any]]:
        path, label = self._paths_and_labels[index]
        return os.path.join(self._path_prefix, path), label_info(label)

    def __len__(self) -> int:
        return len(self._paths_and_labels)

    @property
    def paths(self) -> List[str]:
        return [os.path.join(self._path_prefix, path) for path, _ in self._paths_and_labels]
