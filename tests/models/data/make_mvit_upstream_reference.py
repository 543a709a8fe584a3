"""Regenerates mvit_upstream_0_1_5.pt: small MViTs built by PyTorchVideo 0.1.5 (the PyPI sdist), their
state_dicts in 0.1.5's key layout, an input and upstream's output.

Run with the sdist on sys.path and stand-ins for its unused torchvision/fvcore imports, e.g.
    PYTHONPATH=/tmp/pytorchvideo-0.1.5:/tmp/stubs python make_mvit_upstream_reference.py
0.1.5 hard-codes eps=1e-5 for the attention LayerNorms, upstream HEAD (and pyvideo) use 1e-6; the
script sets HEAD's value so the outputs are the ones a HEAD-compatible model must reproduce.
"""
import pathlib

import torch
from pytorchvideo.models.vision_transformers import create_multiscale_vision_transformers

CONFIGS = {
    "video": dict(spatial_size=32, temporal_size=4, depth=4, patch_embed_dim=16, head_num_classes=10,
                  embed_dim_mul=[[1, 2.0], [3, 2.0]], atten_head_mul=[[1, 2.0], [3, 2.0]],
                  pool_q_stride_size=[[1, 1, 2, 2], [3, 1, 2, 2]], pool_kv_stride_adaptive=[1, 4, 4],
                  pool_kvq_kernel=[3, 3, 3]),
    "image": dict(spatial_size=32, temporal_size=1, depth=3, patch_embed_dim=16, head_num_classes=10,
                  conv_patch_embed_kernel=[7, 7], conv_patch_embed_stride=[4, 4], conv_patch_embed_padding=[3, 3],
                  use_2d_patch=True, embed_dim_mul=[[1, 2.0]], atten_head_mul=[[1, 2.0]],
                  pool_q_stride_size=[[1, 1, 2, 2]], pool_kv_stride_adaptive=[1, 2, 2], pool_kvq_kernel=[1, 3, 3]),
}

if __name__ == "__main__":
    torch.manual_seed(0)
    reference = {}
    for name, config in CONFIGS.items():
        model = create_multiscale_vision_transformers(**config).eval()
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm) and module.eps == 1e-5:
                module.eps = 1e-6
        for param in model.parameters():  # spread the weights so every path matters
            param.data.normal_(0, 0.2)
        shape = (2, 3, config["temporal_size"], 32, 32) if config["temporal_size"] > 1 else (2, 3, 32, 32)
        x = torch.randn(shape)
        with torch.no_grad():
            reference[name] = {"config": config, "state_dict": model.state_dict(), "input": x, "output": model(x)}
    torch.save(reference, pathlib.Path(__file__).with_name("mvit_upstream_0_1_5.pt"))
