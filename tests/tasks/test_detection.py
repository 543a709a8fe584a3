"""AVA-style detection on synthetic boxes: dataset/collate layout, oracle mAP 1, and a tiny RoI detector learns."""
import pytest
import torch

from pyvideo.synth import synthesize_action_dataset
from pyvideo.tasks.detection import AvaBoxDataset, collate_detection, evaluate_detector, train_detector
from pyvideo.tasks.residual_frames import subtract_temporal_mean

FPS = 8.0


@pytest.fixture(scope="module")
def box_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ava")
    files = synthesize_action_dataset(root, num_classes=2, videos_per_class=8, num_frames=16, fps=FPS, height=32,
                                      width=32, boxes=True, seed=2)
    return root, files


def normalise(sample):
    video = subtract_temporal_mean(sample["video"] / 255.0 - 0.45) / 0.225
    return {**sample, "video": video}


def dataset(box_data, split):
    root, files = box_data
    return AvaBoxDataset(files[split], files["boxes"], video_path_prefix=str(root), num_classes=2, num_frames=4,
                         fps=FPS, keyframe_stride=4, transform=normalise)


def test_samples_and_collate_follow_the_roi_head_format(box_data):
    data = dataset(box_data, "train")
    # 16 frames, key frames every 4th annotated frame (0, 4, 8, 12): frame 0 lacks the 2 frames before it
    assert len(data) == 12 * 3
    sample = data[0]
    assert sample["video"].shape == (3, 4, 32, 32) and sample["timestamp"] == pytest.approx(4 / FPS)
    x1, y1, x2, y2 = sample["boxes"][0].tolist()
    assert 0 <= x1 < x2 <= 32 and 0 <= y1 < y2 <= 32
    assert sample["labels"].tolist() == [[1.0, 0.0]]  # the first train video is class 0 (action_id 1)
    batch = collate_detection([data[0], data[5]])
    assert batch["boxes"].shape == (2, 5) and batch["boxes"][:, 0].tolist() == [0.0, 1.0]
    assert batch["video"].shape == (2, 3, 4, 32, 32) and batch["labels"].shape == (2, 2)


class Oracle(torch.nn.Module):
    """Scores each box with its true label (read from a lookup keyed by the box): mAP must be exactly 1."""

    def __init__(self, data):
        super().__init__()
        self.truth = {tuple(s["boxes"][0].tolist()): s["labels"][0] for s in (data[i] for i in range(len(data)))}

    def forward(self, video, boxes):
        return torch.stack([self.truth[tuple(b[1:].tolist())] for b in boxes])


def test_oracle_scores_give_map_one(box_data):
    data = dataset(box_data, "val")
    result = evaluate_detector(Oracle(data), data)
    assert result["mAP"] == pytest.approx(1.0) and set(result["per_class_AP"]) == {1, 2}


def test_tiny_roi_detector_learns(box_data):
    from pyvideo.models.resnet import create_resnet_with_roi_head

    torch.manual_seed(0)
    model = create_resnet_with_roi_head(model_num_class=2, stem_dim_out=8, dropout_rate=0.0,
                                        stem_conv_kernel_size=(3, 7, 7), head_pool_kernel_size=(4, 1, 1),
                                        head_spatial_resolution=(2, 2))
    train, val = dataset(box_data, "train"), dataset(box_data, "val")
    before = evaluate_detector(model, val)["mAP"]
    result = train_detector(model, train, epochs=6, batch_size=6, optimizer="adamw", lr=3e-3, weight_decay=0.0,
                            progress=False)
    losses = [row["loss"] for row in result.history]
    assert sum(losses[-4:]) < sum(losses[:4])
    after = evaluate_detector(model, val)["mAP"]
    assert after > before and after > 0.75, (before, after)
