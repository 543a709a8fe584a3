"""Small helpers shared by layers and model builders."""
import math
from typing import Dict


def set_attributes(self, params: Dict = None) -> None:
    """Store every constructor argument (except ``self``) as an attribute, in argument order.

    The constructor keyword names therefore become the ``state_dict`` names of sub-modules,
    which is what keeps checkpoints interchangeable with PyTorchVideo.
    """
    if params:
        for name, value in params.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)


def round_width(width, multiplier, min_width=8, divisor=8, ceil=False):
    """Scale ``width`` by ``multiplier`` and round to a multiple of ``divisor``.

    If rounding lost more than 10% of the target, one more ``divisor`` is added (X3D's rule).
    """
    if not multiplier:
        return width
    width *= multiplier
    min_width = min_width or divisor
    if ceil:
        width_out = max(min_width, int(math.ceil(width / divisor)) * divisor)
    else:
        width_out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if width_out < 0.9 * width:
        width_out += divisor
    return int(width_out)


def round_repeats(repeats, multiplier):
    """Scale a block count by ``multiplier``, rounding up."""
    if not multiplier:
        return repeats
    return int(math.ceil(multiplier * repeats))
