"""The training loop shared by every task (classification, self-supervised, detection).

A task supplies the model, a map-style dataset and ``loss_fn(model, batch) -> loss`` (or ``(loss, {name: value})``);
``fit`` supplies the rest: optimizer, warm-up + cosine schedule, mixed precision, gradient accumulation, DDP,
checkpoints that resume bit-identically, precise BN, progress bar and the CSV/TensorBoard log.

Bit-identical resume rests on three rules: the schedule length depends only on (epochs, dataset size), not on where
a run stops; the sample order comes from ``ResumableSampler`` (seed, epoch) and restarts at the saved offset; and
DataLoader worker seeds come from a per-epoch generator, never from the global RNG, whose state the checkpoint
restores for dropout and friends. Datasets that draw random augmentations should seed them per (epoch, index),
as ``ClipDataset`` does, so worker count and resume point do not change them.
"""
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import distributed as dist_utils
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .precise_bn import update_bn_stats
from .progress import progress_bar
from .run_log import RunLog
from .sampler import ResumableSampler
from .schedule import cosine_with_warmup

LossFn = Callable[[nn.Module, Any], Union[torch.Tensor, tuple]]


@dataclass
class TrainResult:
    model: nn.Module
    history: List[Dict[str, float]] = field(default_factory=list)  # one row per optimizer step (and per epoch eval)
    steps: int = 0
    checkpoint: Optional[str] = None


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def make_optimizer(parameters, name: str, lr: float, momentum: float, weight_decay: float, betas=(0.9, 0.999)):
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, betas=betas, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {name!r}")


def resolve_precision(precision: str, device: torch.device):
    """Returns (autocast dtype or None, whether a GradScaler is needed)."""
    if precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return None, False
    if precision == "bf16":
        return torch.bfloat16, False
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("precision='fp16' needs a CUDA device (use 'bf16' on CPU)")
        return torch.float16, True
    raise ValueError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {precision!r}")


def _split_loss(output) -> tuple:
    if isinstance(output, tuple):
        return output[0], dict(output[1])
    return output, {}


def _check_arguments(dataset, epochs, batch_size, accumulate_steps):
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise TypeError("fit needs a map-style dataset (with __len__ and __getitem__) to resume exactly")
    if epochs < 1 or batch_size < 1 or accumulate_steps < 1:
        raise ValueError(f"epochs, batch_size and accumulate_steps must be >= 1, got {epochs}, {batch_size}, {accumulate_steps}")


def _optimizer_step(train_model, loss_fn, batches, opt, scheduler, scaler, accumulate_steps, autocast_dtype, device,
                    grad_clip_norm, step) -> Dict[str, float]:
    """Accumulate gradients over ``accumulate_steps`` micro-batches (DDP syncs only on the last), then step the
    optimizer and schedule. Returns the window's mean loss/extras and the learning rate used."""
    window: Dict[str, float] = {}
    for micro in range(accumulate_steps):
        batch = to_device(next(batches), device)
        last = micro == accumulate_steps - 1
        sync = train_model.no_sync() if not last and hasattr(train_model, "no_sync") else contextlib.nullcontext()
        with sync:
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                loss, extras = _split_loss(loss_fn(train_model, batch))
            if not torch.isfinite(loss):
                raise RuntimeError(f"loss became {loss.item()} at step {step} (lower the lr?)")
            scaler.scale(loss / accumulate_steps).backward()
        for key, value in {"loss": loss.item(), **extras}.items():
            window[key] = window.get(key, 0.0) + float(value) / accumulate_steps
    if grad_clip_norm is not None:
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_([p for group in opt.param_groups for p in group["params"]], grad_clip_norm)
    window["lr"] = opt.param_groups[0]["lr"]
    scaler.step(opt)
    scaler.update()
    opt.zero_grad(set_to_none=True)
    scheduler.step()
    return window


def fit(
    model: nn.Module,
    train_dataset: Dataset,
    loss_fn: LossFn,
    *,
    epochs: int = 1,
    batch_size: int = 8,
    num_workers: int = 0,
    collate_fn: Optional[Callable] = None,
    optimizer: str = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    warmup_epochs: float = 0.0,
    min_lr_ratio: float = 0.0,
    parameters=None,
    precision: str = "auto",
    accumulate_steps: int = 1,
    grad_clip_norm: Optional[float] = None,
    max_steps: Optional[int] = None,
    checkpoint_dir: Optional[str] = None,
    checkpoint_every_steps: Optional[int] = None,
    resume: Union[bool, str] = False,
    precise_bn_batches: int = 0,
    bn_forward: Optional[Callable[[nn.Module, Any], Any]] = None,
    evaluate: Optional[Callable[[nn.Module], Dict[str, float]]] = None,
    seed: int = 0,
    device: Union[str, torch.device] = "cpu",
    log_dir: Optional[str] = None,
    log_every_steps: int = 1,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` in place; see the module docstring. One optimizer step = ``accumulate_steps`` micro-batches.

    ``resume``: True resumes from the newest checkpoint in ``checkpoint_dir`` (if any), a path resumes from that file.
    ``max_steps`` stops early (after saving a checkpoint) without changing the schedule, which always spans ``epochs``.
    ``bn_forward(model, batch)`` runs the model for precise-BN recalibration at the end of every epoch.
    ``evaluate(model) -> metrics`` runs on rank 0 after every epoch; its metrics are logged.
    ``parameters``: what the optimizer updates (default: every parameter that requires grad).
    """
    _check_arguments(train_dataset, epochs, batch_size, accumulate_steps)
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # under torchrun: the GPU init_distributed selected
        device = torch.device("cuda", torch.cuda.current_device())
    autocast_dtype, use_scaler = resolve_precision(precision, device)
    model.to(device)
    world, rank = dist_utils.world_size(), dist_utils.rank()
    sampler = ResumableSampler(len(train_dataset), seed=seed, num_replicas=world, rank=rank)
    micro_per_epoch = len(sampler) // batch_size
    steps_per_epoch = micro_per_epoch // accumulate_steps
    if steps_per_epoch < 1:
        raise ValueError(f"{len(train_dataset)} samples over {world} rank(s) do not fill one step of "
                         f"{accumulate_steps} x batch {batch_size}")
    total_steps = epochs * steps_per_epoch
    opt = make_optimizer(parameters if parameters is not None else [p for p in model.parameters() if p.requires_grad],
                         optimizer, lr, momentum, weight_decay)
    scheduler = cosine_with_warmup(opt, total_steps, min(total_steps, round(warmup_epochs * steps_per_epoch)), min_lr_ratio)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    state = {"epoch": 0, "step": 0, "step_in_epoch": 0}
    resume_path = resume if isinstance(resume, str) else (latest_checkpoint(checkpoint_dir) if resume else None)
    if resume_path:
        state.update(load_checkpoint(resume_path, model=model, optimizer=opt, scheduler=scheduler, scaler=scaler))
    train_model = model
    if dist_utils.is_distributed():
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    main = dist_utils.is_main_process()
    log = RunLog(log_dir if main else None)
    result = TrainResult(model=model, steps=state["step"])

    def checkpoint():
        if checkpoint_dir and main:
            path = os.path.join(checkpoint_dir, f"checkpoint_{state['step']:08d}.pt")
            result.checkpoint = save_checkpoint(path, model=model, optimizer=opt, scheduler=scheduler, scaler=scaler,
                                                trainer_state=dict(state))
        dist_utils.barrier()

    bar = progress_bar(total_steps, desc, enabled=progress and main, initial=state["step"])
    stop = False
    for epoch in range(state["epoch"], epochs):
        if hasattr(train_dataset, "set_epoch"):
            train_dataset.set_epoch(epoch)
        sampler.set_epoch(epoch, start_index=state["step_in_epoch"] * accumulate_steps * batch_size)
        loader = DataLoader(train_dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                            collate_fn=collate_fn, drop_last=True,
                            generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        batches = iter(loader)
        train_model.train()
        while state["step_in_epoch"] < steps_per_epoch:
            window = _optimizer_step(train_model, loss_fn, batches, opt, scheduler, scaler, accumulate_steps,
                                     autocast_dtype, device, grad_clip_norm, state["step"])
            state["step"] += 1
            state["step_in_epoch"] += 1
            row = {"epoch": epoch + state["step_in_epoch"] / steps_per_epoch, **window}
            result.history.append({"step": state["step"], **row})
            if state["step"] % log_every_steps == 0:
                log.log(state["step"], row)
            bar.update(1)
            bar.set_postfix_str(f"loss {window['loss']:.4f} lr {window['lr']:.3g}")
            if checkpoint_every_steps and state["step"] % checkpoint_every_steps == 0:
                checkpoint()
            if max_steps is not None and state["step"] >= max_steps:
                stop = True
                break
        del batches, loader
        if stop:
            break
        state.update(epoch=epoch + 1, step_in_epoch=0)
        _end_of_epoch(model, train_dataset, state, result, log, evaluate, precise_bn_batches, bn_forward,
                      batch_size, num_workers, collate_fn, seed, device, main)
    bar.close()
    checkpoint()  # also after a periodic one at the same step: end-of-epoch precise BN may have changed buffers
    log.close()
    result.steps = state["step"]
    return result


def _end_of_epoch(model, dataset, state, result, log, evaluate, precise_bn_batches, bn_forward, batch_size,
                  num_workers, collate_fn, seed, device, main):
    if precise_bn_batches:
        bn_sampler = ResumableSampler(len(dataset), seed=seed + 1, num_replicas=dist_utils.world_size(),
                                      rank=dist_utils.rank())
        bn_sampler.set_epoch(state["epoch"])
        loader = DataLoader(dataset, batch_size=batch_size, sampler=bn_sampler, num_workers=num_workers,
                            collate_fn=collate_fn, drop_last=True,
                            generator=torch.Generator().manual_seed(seed * 7919 + state["epoch"] + 104729))
        update_bn_stats(model, (to_device(b, device) for b in loader), precise_bn_batches, bn_forward)
    if evaluate is not None:
        metrics = evaluate(model) if main else {}
        dist_utils.barrier()
        if main:
            row = {"epoch": float(state["epoch"]), **metrics}
            result.history.append({"step": state["step"], **row})
            log.log(state["step"], row)
            print(f"epoch {state['epoch']}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
