"""Base class of efficient blocks: a trainable *original form* and an equivalent *deploy form*."""
from abc import abstractmethod

import torch.nn as nn


class EfficientBlockBase(nn.Module):
    """A block with two forms.

    The original form is what the constructor builds: it trains like any ``nn.Module``. ``convert()`` rewrites the
    block in place into its deploy form, which computes the same function (BatchNorm folded, activations fused) from
    modules that the native kernels and the int8 quantizer understand. ``convert`` receives the block's input size
    as seen on an example forward pass (``input_blob_size``) plus keyword options; the deploy forms in pyvideo do not
    depend on that size, so a converted block accepts any batch size and any T/H/W its original form accepts.
    """

    @abstractmethod
    def convert(self, *args, **kwargs):
        """Rewrite this block in place into its deploy form."""

    @abstractmethod
    def forward(self, *args, **kwargs):
        """Same computation in both forms."""
