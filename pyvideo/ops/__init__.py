"""Vision ops implemented by pyvideo itself (no torchvision dependency)."""
from .roi_align import RoIAlign, roi_align

__all__ = ["RoIAlign", "roi_align"]
