"""The constrained positional encoding of PyTorchVideo's scriptable MViT (no cls token, separate tables)."""
from typing import Tuple

from .positional_encoding import SpatioTemporalClsPositionalEncoding


class ScriptableSpatioTemporalClsPositionalEncoding(SpatioTemporalClsPositionalEncoding):
    """:class:`SpatioTemporalClsPositionalEncoding` restricted to ``has_cls=False, sep_pos_embed=True``;
    ``patch_embed_shape`` is a property here, as upstream.
    """

    def __init__(
        self,
        embed_dim: int,
        patch_embed_shape: Tuple[int, int, int],
        sep_pos_embed: bool = False,
        has_cls: bool = True,
    ) -> None:
        if has_cls or not sep_pos_embed:
            raise ValueError(
                "ScriptableSpatioTemporalClsPositionalEncoding supports only has_cls=False and sep_pos_embed=True"
            )
        super().__init__(embed_dim, patch_embed_shape, sep_pos_embed=True, has_cls=False)

    @property
    def patch_embed_shape(self) -> Tuple[int, int, int]:
        return self._patch_embed_shape
