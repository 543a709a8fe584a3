"""Checkpoints that resume training bit-identically.

A checkpoint holds the model (under "model_state", the key PyTorchVideo's .pyth files use, so the files load in
either library), the optimizer, LR scheduler, AMP grad scaler, the RNG states of torch / CUDA / numpy / python and
the trainer's position (epoch, step, sampler offset). Everything is stored as tensors and plain Python values,
so ``torch.load(weights_only=True)`` reads it.
"""
import os
import random
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module inside DistributedDataParallel / DataParallel."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def capture_rng_state() -> Dict[str, Any]:
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["name"], np_state["keys"].numpy().astype(np.uint32), np_state["position"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str, *, model: nn.Module, optimizer=None, scheduler=None, scaler=None,
                    trainer_state: Optional[Dict[str, Any]] = None) -> str:
    """Write atomically (temp file + rename), so an interrupted save never leaves a truncated checkpoint."""
    payload = {
        "model_state": unwrap(model).state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
        "scaler_state": scaler.state_dict() if scaler is not None else None,
        "rng_state": capture_rng_state(),
        "trainer_state": trainer_state or {},
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str, map_location="cpu") -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise RuntimeError(f"cannot read checkpoint {path}: {error}") from error


def model_state_from_checkpoint(checkpoint: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """The model weights of a pyvideo or PyTorchVideo checkpoint ({"model_state": ...}) or of a raw state_dict."""
    state = checkpoint.get("model_state", checkpoint)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("checkpoint holds no model state_dict (expected a 'model_state' entry or a raw state_dict)")
    return state


def load_checkpoint(path: str, *, model: nn.Module, optimizer=None, scheduler=None, scaler=None,
                    restore_rng: bool = True, map_location="cpu") -> Dict[str, Any]:
    """Restore everything ``save_checkpoint`` wrote into the given objects; returns the trainer state."""
    checkpoint = read_checkpoint(path, map_location)
    unwrap(model).load_state_dict(model_state_from_checkpoint(checkpoint))
    for target, key in ((optimizer, "optimizer_state"), (scheduler, "scheduler_state"), (scaler, "scaler_state")):
        if target is not None and checkpoint.get(key) is not None:
            target.load_state_dict(checkpoint[key])
    if restore_rng and "rng_state" in checkpoint:
        restore_rng_state(checkpoint["rng_state"])
    return checkpoint.get("trainer_state", {})


def latest_checkpoint(directory: str) -> Optional[str]:
    """The newest ``checkpoint_*.pt`` in ``directory`` by step number, or None."""
    if not directory or not os.path.isdir(directory):
        return None
    steps = []
    for name in os.listdir(directory):
        if name.startswith("checkpoint_") and name.endswith(".pt") and name[11:-3].isdigit():
            steps.append(int(name[11:-3]))
    return os.path.join(directory, f"checkpoint_{max(steps):08d}.pt") if steps else None
