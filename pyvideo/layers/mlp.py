from typing import Callable, List, Optional, Tuple

import torch.nn as nn


def make_multilayer_perceptron(
    fully_connected_dims: List[int],
    norm: Optional[Callable] = None,
    mid_activation: Callable = nn.ReLU,
    final_activation: Optional[Callable] = nn.ReLU,
    dropout_rate: float = 0.0,
) -> Tuple[nn.Module, int]:
    """Builds Linear -> [norm] -> mid_activation for each hidden width, then the last Linear,
    optional Dropout and final_activation.

    Args:
        fully_connected_dims: [input_dim, hidden_1, ..., output_dim], at least two positive ints.
        norm: builder called with a width, e.g. nn.BatchNorm1d; None for no normalisation.
        mid_activation: activation builder after each hidden layer.
        final_activation: activation builder after the last layer, or None.
        dropout_rate: dropout after the last Linear when > 0.

    Returns:
        (nn.Sequential, output_dim)
    """
    if not isinstance(fully_connected_dims, (list, tuple)) or len(fully_connected_dims) < 2:
        raise ValueError(f"fully_connected_dims must be a list of at least 2 widths, got {fully_connected_dims!r}")
    if not all(isinstance(d, int) and d > 0 for d in fully_connected_dims):
        raise ValueError(f"fully_connected_dims must hold positive ints, got {fully_connected_dims!r}")
    layers = []
    for dim_in, dim_out in zip(fully_connected_dims[:-2], fully_connected_dims[1:-1]):
        layers.append(nn.Linear(dim_in, dim_out))
        if norm is not None:
            layers.append(norm(dim_out))
        layers.append(mid_activation())
    layers.append(nn.Linear(fully_connected_dims[-2], fully_connected_dims[-1]))
    if dropout_rate > 0:
        layers.append(nn.Dropout(p=dropout_rate))
    if final_activation is not None:
        layers.append(final_activation())
    return nn.Sequential(*layers), fully_connected_dims[-1]
