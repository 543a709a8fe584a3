"""Weight initialisation used by every ``Net`` (ResNet style) and by MViT (ViT style)."""
import torch.nn as nn


def c2_msra_fill(module: nn.Module) -> None:
    """Caffe2 "MSRAFill": He-normal weights with fan_out for ReLU, zero bias."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def c2_xavier_fill(module: nn.Module) -> None:
    """Caffe2 "XavierFill": uniform in ±sqrt(3 / fan_in) (He-uniform with a=1), zero bias."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def _init_resnet_weights(model: nn.Module, fc_init_std: float) -> None:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            c2_msra_fill(module)
        elif isinstance(module, nn.modules.batchnorm._NormBase):
            if module.weight is not None:
                # the last BN of a residual branch starts at zero so each block begins as identity
                module.weight.data.fill_(0.0 if getattr(module, "block_final_bn", False) else 1.0)
            if module.bias is not None:
                module.bias.data.zero_()
        if isinstance(module, nn.Linear):
            if getattr(module, "xavier_init", False):
                c2_xavier_fill(module)
            else:
                module.weight.data.normal_(mean=0.0, std=fc_init_std)
            if module.bias is not None:
                module.bias.data.zero_()


def _init_vit_weights(model: nn.Module, trunc_normal_std: float) -> None:
    from pyvideo.layers.positional_encoding import SpatioTemporalClsPositionalEncoding

    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=trunc_normal_std)
            if module.bias is not None:
                nn.init.constant_(module.bias, 0)
        elif isinstance(module, nn.LayerNorm):
            nn.init.constant_(module.bias, 0)
            nn.init.constant_(module.weight, 1.0)
        if isinstance(module, SpatioTemporalClsPositionalEncoding):
            for weights in module.parameters():
                nn.init.trunc_normal_(weights, std=0.02)


def init_net_weights(model: nn.Module, init_std: float = 0.01, style: str = "resnet") -> nn.Module:
    """Initialise ``model`` in place, ``style`` "resnet" or "vit"; returns the model."""
    if style == "resnet":
        _init_resnet_weights(model, init_std)
    elif style == "vit":
        _init_vit_weights(model, init_std)
    else:
        raise ValueError(f"unknown weight init style {style!r}; use 'resnet' or 'vit'")
    return model
