"""The same transforms on CUDA tensors: outputs stay on the GPU and match the CPU path."""
import pytest
import torch

import pyvideo.transforms as T
from pyvideo.transforms import AugMix, RandAugment, create_video_transform
from pyvideo.transforms import functional as VF

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

_DETERMINISTIC = {
    "short_side_scale": lambda x: VF.short_side_scale(x, 6),
    "uniform_crop": lambda x: VF.uniform_crop(x, 6, 2),
    "uniform_temporal_subsample": lambda x: VF.uniform_temporal_subsample(x, 3),
    "Normalize": T.Normalize((0.45, 0.45, 0.45), (0.225, 0.225, 0.225)),
    "CenterCropVideo": T.CenterCropVideo(5),
    "GaussianBlur": T.GaussianBlur(5, 1.2),
    "ColorJitter": lambda x: T.ColorJitter(0.3, 0.3, 0.3, 0.1, generator=torch.Generator().manual_seed(0))(x),
    "MoveChannelRear": T.MoveChannelRear(),
}


@pytest.mark.parametrize("name", sorted(_DETERMINISTIC))
def test_gpu_matches_cpu(name):
    clip = torch.rand(2, 3, 5, 8, 10)
    transform = _DETERMINISTIC[name]
    on_gpu = transform(clip.cuda())
    assert on_gpu.is_cuda
    assert torch.allclose(on_gpu.cpu(), transform(clip), atol=1e-5)


@pytest.mark.parametrize("name", ["Rotate", "ShearX", "TranslateY", "Equalize", "Posterize", "Solarize",
                                  "AdjustSharpness", "AutoContrast"])
def test_augment_ops_gpu_match_cpu(name):
    from pyvideo.transforms import augmentations as aug
    video = (torch.rand(3, 3, 8, 8) * 255).to(torch.uint8)
    fn, level_fn = aug._NAME_TO_TRANSFORM_FUNC[name], aug._LEVEL_TO_ARG[name]
    args = () if level_fn is None else level_fn(5, aug._TRANSFORM_MAX_PARAMS[name])
    on_gpu = fn(video.cuda(), *args, fill=(0.5, 0.5, 0.5))
    assert on_gpu.is_cuda
    diff = (on_gpu.cpu().int() - fn(video, *args, fill=(0.5, 0.5, 0.5)).int()).abs()
    assert diff.max() <= 1  # rounding of bilinear sums may differ by one level


def test_random_pipelines_run_on_gpu():
    clip = (torch.rand(3, 16, 40, 60) * 255).to(torch.uint8).cuda()
    for aug_type in ("default", "randaug", "augmix"):
        out = create_video_transform("train", aug_type=aug_type, min_size=32, max_size=40, crop_size=24)(clip)
        assert out.is_cuda and out.shape == (3, 8, 24, 24)
    frames = clip.permute(1, 0, 2, 3)
    assert RandAugment(prob=1.0)(frames).is_cuda and AugMix()(frames).is_cuda
    video = torch.rand(4, 3, 2, 8, 8, device="cuda")
    mixed, labels = T.MixVideo(num_classes=5)(video, torch.tensor([0, 1, 2, 3], device="cuda"))
    assert mixed.is_cuda and labels.is_cuda
    cropped, boxes = VF.random_crop_with_boxes(video[0], 4, torch.tensor([[0.0, 0.0, 7.0, 7.0]], device="cuda"))
    assert cropped.is_cuda and boxes.is_cuda
