"""Registration of pyvideo's native ops in the ``torch.ops.pyvideo`` namespace.

The ops are defined with the low-level ``torch.library.Library`` API rather than ``torch.library.custom_op``: the
dispatcher then calls the CPU implementation directly, which costs ~15 us per call instead of ~45 us (a deploy-form
X3D makes ~100 such calls per clip, many on layers that take 50-200 us). Every op gets a fake (meta)
implementation so ``torch.compile`` and ``torch.export`` can trace it.
"""
from typing import Callable

import torch

_LIBRARY = torch.library.Library("pyvideo", "FRAGMENT")  # kept alive for the process: dropping it unregisters


def define_op(schema: str, cpu_impl: Callable, fake_impl: Callable):
    """Define ``pyvideo::<name>`` from ``schema`` with its CPU and fake implementations; returns the op."""
    name = schema.split("(", 1)[0]
    _LIBRARY.define(schema)
    _LIBRARY.impl(name, cpu_impl, "CPU")
    torch.library.register_fake(f"pyvideo::{name}")(fake_impl)
    return getattr(torch.ops.pyvideo, name)
