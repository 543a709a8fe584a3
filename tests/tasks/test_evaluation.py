"""Multi-view testing: which frames and crops each view holds, how scores are averaged, mAP and the PNG."""
import pytest
import torch

from pyvideo.tasks.evaluation import evaluate_multiview, multiview_clips, temporal_clip_starts


def coded_video(frames=20, height=8, width=12):
    """Pixel value = 100 * frame + column, so a view reveals which frames and columns it took."""
    t = torch.arange(frames).view(1, frames, 1, 1)
    x = torch.arange(width).view(1, 1, 1, width)
    return (100 * t + x + 0 * torch.zeros(3, 1, height, 1)).float()


def test_temporal_clip_starts_spread_like_constant_clips_per_video():
    assert temporal_clip_starts(20, 8, 3) == [0, 6, 12]
    assert temporal_clip_starts(20, 8, 1) == [6]
    assert temporal_clip_starts(5, 8, 2) == [0, 0]  # shorter than a clip: every clip starts at 0


def test_views_hold_the_expected_frames_and_crops():
    views = multiview_clips(coded_video(), num_frames=4, sampling_rate=2, num_temporal_clips=3, num_spatial_crops=3,
                            crop_size=8)
    assert views.shape == (9, 3, 4, 8, 8)
    frames = lambda view: (views[view, 0, :, 0, 0] // 100).long().tolist()
    first_column = lambda view: int(views[view, 0, 0, 0, 0] % 100)
    # clip windows [0,8), [6,14), [12,20); linspace(0, 7, 4) -> offsets 0, 2, 4, 7
    assert frames(0) == [0, 2, 4, 7] and frames(3) == [6, 8, 10, 13] and frames(8) == [12, 14, 16, 19]
    # crops along the long side (width 12, crop 8): offsets 0, 2, 4
    assert [first_column(v) for v in range(3)] == [0, 2, 4]
    with pytest.raises(ValueError, match="num_spatial_crops"):
        multiview_clips(coded_video(), num_frames=4, crop_size=8, num_spatial_crops=2)


class MeanModel(torch.nn.Module):
    """Two logits from the clip mean: class 0 for dark clips, class 1 for bright ones."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3, 4))
        return torch.stack([-m, m], dim=1)


def test_scores_are_the_softmax_average_over_views(tmp_path):
    videos = [(coded_video() * 0.01 - 100, 0), (coded_video() * 0.02 + 200, 1)]
    png = tmp_path / "cm.png"
    result = evaluate_multiview(MeanModel(), videos, num_frames=4, sampling_rate=2, crop_size=8, num_temporal_clips=3,
                                num_spatial_crops=3, mean=(0, 0, 0), std=(1, 1, 1), confusion_png=str(png))
    for row, (video, _) in enumerate(videos):
        views = multiview_clips(video, num_frames=4, sampling_rate=2, num_temporal_clips=3, crop_size=8) / 255.0
        expected = torch.softmax(MeanModel()(views), dim=1).mean(dim=0)
        assert torch.allclose(result.scores[row], expected, atol=1e-6)
    assert result.metrics["top1"] == 1.0 and result.confusion.tolist() == [[1, 0], [0, 1]]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_multilabel_reports_map():
    videos = [(coded_video() * 0.01, torch.tensor([1, 0])), (coded_video() * 0.02 + 200, torch.tensor([1, 1]))]
    result = evaluate_multiview(MeanModel(), videos, num_frames=4, crop_size=8, num_temporal_clips=2, multilabel=True,
                                mean=(0, 0, 0), std=(1, 1, 1))
    # class 0: both positive -> AP 1; class 1: the bright video (higher sigmoid of +mean) is the positive -> AP 1
    assert result.metrics == {"mAP": pytest.approx(1.0)}
    assert torch.all((result.scores > 0) & (result.scores < 1))
