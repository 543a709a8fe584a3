"""The shared training loop: learning, bit-identical resume, accumulation, precise BN, schedule, sampler, log."""
import csv

import pytest
import torch

from pyvideo.tasks.checkpoint import latest_checkpoint, read_checkpoint
from pyvideo.tasks.classification import train_classifier, validation_accuracy
from pyvideo.tasks.precise_bn import update_bn_stats
from pyvideo.tasks.sampler import ResumableSampler
from pyvideo.tasks.schedule import cosine_with_warmup

from .tiny import DictDataset, TinyVideoNet, motion_tensors, synth_clip_dataset


def test_classifier_learns_motion_and_logs(tmp_path):
    torch.manual_seed(0)
    videos, labels = motion_tensors(num_classes=2, per_class=24, frames=8, size=20)
    train, val = DictDataset(videos[::2], labels[::2]), DictDataset(videos[1::2], labels[1::2])
    model = TinyVideoNet(num_classes=2, width=8)
    before = validation_accuracy(model, val)["val_top1"]
    result = train_classifier(model, train, val_dataset=val, epochs=8, batch_size=8, lr=0.05, optimizer="adamw",
                              weight_decay=0.0, warmup_epochs=1, log_dir=str(tmp_path), progress=False)
    losses = [row["loss"] for row in result.history if "loss" in row]
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3
    after = validation_accuracy(model, val)["val_top1"]
    assert after >= 0.75 and after > before  # chance is 0.5
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len([r for r in rows if r["loss"]]) == result.steps == 8 * (24 // 8)
    assert float(rows[-1]["val_top1"]) == pytest.approx(after)


def _train(dataset, tmp_dir, **kwargs):
    torch.manual_seed(1)
    model = TinyVideoNet(num_classes=2, width=4, dropout=0.3)
    defaults = dict(epochs=3, batch_size=2, lr=0.05, warmup_epochs=1, progress=False, checkpoint_dir=str(tmp_dir),
                    seed=5, precise_bn_batches=2)
    result = train_classifier(model, dataset, **{**defaults, **kwargs})
    return model, result


@pytest.mark.parametrize("num_workers", [0, 1])
def test_resume_is_bit_identical(tmp_path, num_workers):
    dataset = synth_clip_dataset(tmp_path / "data", videos_per_class=5)  # 2 x 4 train videos, 4 steps per epoch
    straight, full = _train(dataset, tmp_path / "a", num_workers=num_workers)
    first, part = _train(dataset, tmp_path / "b", num_workers=num_workers, max_steps=6)  # stops mid-epoch 2
    assert part.steps == 6 and latest_checkpoint(str(tmp_path / "b")).endswith("checkpoint_00000006.pt")
    torch.manual_seed(123)  # the resumed run must not depend on the caller's RNG state
    resumed, rest = _train(dataset, tmp_path / "b", num_workers=num_workers, resume=True)
    assert rest.steps == full.steps == 12
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert [r["loss"] for r in full.history[6:]] == [r["loss"] for r in rest.history]
    state = read_checkpoint(latest_checkpoint(str(tmp_path / "b")))
    assert state["trainer_state"] == {"epoch": 3, "step": 12, "step_in_epoch": 0}


def test_gradient_accumulation_matches_large_batch():
    videos, labels = motion_tensors(num_classes=2, per_class=4, frames=4, size=12)
    dataset = DictDataset(videos, labels)
    models = []
    for batch_size, accumulate in ((4, 1), (2, 2)):
        torch.manual_seed(0)
        model = TinyVideoNet(num_classes=2, width=4, dropout=0.0)
        model.eval()  # BN in eval mode: a micro-batch then computes exactly what the big batch does
        loss = lambda m, b: torch.nn.functional.cross_entropy(m.eval()(b["video"]), b["label"])
        from pyvideo.tasks.trainer import fit

        fit(model, dataset, loss, epochs=1, batch_size=batch_size, accumulate_steps=accumulate, lr=0.1,
            progress=False, momentum=0.0, weight_decay=0.0)
        models.append(model)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_precise_bn_computes_exact_average():
    bn = torch.nn.BatchNorm3d(2, momentum=0.1).eval()  # the caller's mode is restored afterwards
    batches = [torch.randn(4, 2, 2, 3, 3) * s + m for s, m in ((1, 0), (2, 3), (0.5, -1))]
    used = update_bn_stats(bn, batches, num_batches=3)
    assert used == 3 and bn.momentum == 0.1 and not bn.training
    means = torch.stack([b.mean(dim=(0, 2, 3, 4)) for b in batches]).mean(0)
    variances = torch.stack([b.transpose(0, 1).reshape(2, -1).var(dim=1, unbiased=True) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean, means, atol=1e-5)
    assert torch.allclose(bn.running_var, variances, atol=1e-4)


def test_cosine_schedule_shape():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = cosine_with_warmup(opt, total_steps=10, warmup_steps=2, min_lr_ratio=0.1)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0) and lrs[2] == pytest.approx(1.0)
    assert lrs[6] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * 4 / 8)).item()))
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))
    with pytest.raises(ValueError, match="warmup_steps"):
        cosine_with_warmup(opt, total_steps=3, warmup_steps=4)


def test_sampler_shards_disjointly_and_resumes():
    shards = []
    for rank in range(3):
        sampler = ResumableSampler(10, seed=4, num_replicas=3, rank=rank)
        sampler.set_epoch(2)
        shards.append(list(sampler))
    assert all(len(s) == 4 for s in shards)
    flat = sum(shards, [])
    assert sorted(set(flat)) == list(range(10)) and len(flat) - len(set(flat)) == 2  # 2 wrap-around pads
    sampler = ResumableSampler(10, seed=4)
    sampler.set_epoch(1)
    full = list(sampler)
    sampler.set_epoch(1, start_index=7)
    assert list(sampler) == full[7:] and sorted(full) == list(range(10))
    sampler.set_epoch(2)
    assert list(sampler) != full


def test_fit_rejects_bad_arguments():
    dataset = DictDataset(*motion_tensors(per_class=2, frames=2, size=8))
    with pytest.raises(ValueError, match="fill one step"):
        train_classifier(TinyVideoNet(), dataset, batch_size=8, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        train_classifier(TinyVideoNet(), dataset, batch_size=2, optimizer="lamb", progress=False)
    with pytest.raises(ValueError, match="fp16"):
        train_classifier(TinyVideoNet(), dataset, batch_size=2, precision="fp16", progress=False)


def test_bf16_autocast_on_cpu_trains():
    dataset = DictDataset(*motion_tensors(per_class=4, frames=4, size=12))
    torch.manual_seed(0)
    model = TinyVideoNet(width=4)
    before = [p.detach().clone() for p in model.parameters()]
    result = train_classifier(model, dataset, batch_size=4, precision="bf16", lr=0.05, progress=False)
    assert result.steps == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast keeps fp32 master weights
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_augmentations_do_not_depend_on_worker_count(tmp_path):
    dataset = synth_clip_dataset(tmp_path / "data", videos_per_class=3)
    dataset.set_epoch(4)
    runs = []
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=workers)
        runs.append(torch.cat([batch["video"] for batch in loader]))
    assert torch.equal(runs[0], runs[1])
    dataset.set_epoch(5)
    assert not torch.equal(runs[0][:1], dataset[0]["video"][None])  # a new epoch draws new crops
