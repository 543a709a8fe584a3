"""Kinetics-400/600/700 (paper convention: ``Kinetics(data_path=..., clip_sampler=...)``).

``data_path`` is a file of ``path label`` lines or a folder with one sub-folder of videos per class;
every argument is that of ``labeled_video_dataset``.
"""
from .labeled_video_dataset import labeled_video_dataset

Kinetics = labeled_video_dataset
