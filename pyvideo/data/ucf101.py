"""UCF101: ``data_path`` is a split file of ``path label`` lines (e.g. trainlist01.txt, with
``video_path_prefix`` the video folder) or class sub-folders; arguments are those of ``labeled_video_dataset``."""
from .labeled_video_dataset import labeled_video_dataset

Ucf101 = labeled_video_dataset
