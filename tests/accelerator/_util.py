"""Shared helpers for the accelerator tests."""
import torch
import torch.nn as nn

from pyvideo._native import native, using_isa

from pyvideo.accelerator.quantization import QParams, QuantizedConv3d, QuantizedLinear, quantize


def randomize_batchnorm(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters, so folding them is really tested."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) * 0.4 - 0.2)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(n, generator=generator) * 0.4 - 0.2)
    return model


def int8_levels():
    """Every supported ISA level; and each level whose int8 dense kernel uses a byte dot product here (its variant is
    not named after the level: avx512vnni, amx+avx512vnni, avxvnni, neondot) also without it, named LEVEL-nodot
    (using_level): there it runs the int8 kernels of CPUs that lack one (avx512-nodot: Skylake-SP's), which would
    otherwise be tested only on such CPUs. A level without one here gets no -nodot twin: it would run the same
    kernels again."""
    levels = list(native().supported_isas())
    for level in native().supported_isas():
        with using_isa(level):
            if native().qconv3d_variant() != level:
                levels.append(f"{level}-nodot")
    return levels


def using_level(level: str):
    """using_isa for an int8_levels() name."""
    if level.endswith("-nodot"):
        return using_isa(level[: -len("-nodot")], byte_dot=False)
    return using_isa(level)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-12))


class _PlainResBlock(nn.Module):
    """ResNet/X3D-style block from plain modules, with a functional residual add (like pyvideo's ResBlock)."""

    def __init__(self, channels, stride):
        super().__init__()
        self.conv_a, self.norm_a, self.act_a = nn.Conv3d(channels, 2 * channels, 1, bias=False), nn.BatchNorm3d(2 * channels), nn.ReLU()
        self.conv_b = nn.Conv3d(2 * channels, 2 * channels, 3, stride=(1, stride, stride), padding=1, groups=2 * channels, bias=False)
        self.norm_b, self.act_b = nn.BatchNorm3d(2 * channels), nn.Hardswish()
        self.conv_c, self.norm_c = nn.Conv3d(2 * channels, channels, (3, 1, 1), padding=(1, 0, 0), bias=False), nn.BatchNorm3d(channels)
        self.shortcut = nn.Conv3d(channels, channels, 1, stride=(1, stride, stride), bias=False)
        self.activation = nn.ReLU()

    def forward(self, x):
        y = self.act_b(self.norm_b(self.conv_b(self.act_a(self.norm_a(self.conv_a(x))))))
        return self.activation(self.shortcut(x) + self.norm_c(self.conv_c(y)))


def make_plain_model(num_classes=5):
    """A small plain-Conv3d video classifier: dense stem, 5x1x1 temporal conv, two residual blocks, head."""
    return nn.Sequential(
        nn.Conv3d(3, 8, (3, 3, 3), stride=(1, 2, 2), padding=1, bias=False),  # dense: stays a (fused) plain conv
        nn.BatchNorm3d(8),
        nn.ReLU(),
        nn.Conv3d(8, 8, (5, 1, 1), padding=(2, 0, 0), groups=8, bias=False),
        nn.BatchNorm3d(8),
        _PlainResBlock(8, stride=2),
        _PlainResBlock(8, stride=1),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


class PooledHead(nn.Module):
    """conv (3 -> 8, 3x3x3) -> ReLU -> ``pool`` -> 1x1x1 conv (8 -> 5): a pooling layer between two convs, as the
    native pool steps' tests need (a MaxPool3d with return_indices hands its values on)."""

    def __init__(self, pool: nn.Module):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = pool
        self.proj = nn.Conv3d(8, 5, 1)

    def forward(self, x):
        pooled = self.pool(self.act(self.conv(x)))
        if getattr(self.pool, "return_indices", False):  # (values, indices)
            pooled = pooled[0]
        return self.proj(pooled)


def train_steps(model: nn.Module, clips, labels: torch.Tensor, steps: int, lr: float = 0.05) -> list:
    """``steps`` SGD steps of cross-entropy on one batch; the losses (checked finite)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(clips), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    return losses


def layer_by_layer_code_differences(qat, int8_model, clips):
    """Each int8 conv / linear of the converted model, given the int8 codes of the inputs (and residual) its fake-quant
    twin saw in one run of the QAT model, against the twin's output quantized with the same qparams: per layer, the
    largest code difference and the fraction of codes that differ. Layer by layer, so that one rounding flip cannot
    cascade into the next layers' comparisons."""
    twins = {name.replace(".", "_") + "_int8": module for name, module in qat.named_modules()}
    seen, handles = {}, []
    for name, module in int8_model.named_modules():
        if isinstance(module, (QuantizedConv3d, QuantizedLinear)):
            twin = twins[name]  # every int8 layer has its fake-quant twin (converted under the twin's name)
            handles.append(twin.register_forward_hook(lambda m, inputs, out, n=name: seen.__setitem__(n, (inputs, out))))
    with torch.no_grad():
        qat(clips)
    for handle in handles:
        handle.remove()
    assert len(seen) == len(handles)  # every twin ran
    result = {}
    with torch.no_grad():
        for name, (inputs, out) in seen.items():
            module = int8_model.get_submodule(name)
            args = [quantize(inputs[0], module.input_qparams)]
            if len(inputs) > 1 and inputs[1] is not None:
                args.append(quantize(inputs[1], QParams(module.residual_scale, module.residual_zero_point)))
            got = module(*args)
            if module.output_qparams is None:  # a layer whose float32 output a float op reads
                torch.testing.assert_close(got, out, rtol=1e-4, atol=1e-4 * float(out.abs().max()))
                continue
            difference = (got.int() - quantize(out, module.output_qparams).int()).abs()
            result[name] = (int(difference.max()), float((difference > 0).float().mean()))
    return result


def assert_matches_fake_quant_layer_by_layer(qat, int8_model, clips, min_layers: int) -> float:
    """A converted QAT model against its fake-quant model: the same arithmetic up to float rounding. The fake model
    multiplies scaled floats where the int8 one sums exact integer products, so a value within float rounding of a
    rounding tie can land one code apart; which values do depends on torch's conv kernels, i.e. on the CPU (none in
    test_quantization's X3D on the Intel VMs this was written on; 1e-5 to 1e-4 of the codes from the stem on on an AMD
    EPYC), and one flip cascades through the rest of a random model (relative L2 error 8e-3 to 2e-2 there, below 1e-6
    without one). Hence layer by layer (:func:`layer_by_layer_code_differences`, more than `min_layers` layers): at
    most one code apart, in under 0.1% of a layer's codes; and the whole model within 5%. Returns the worst layer's
    fraction of differing codes."""
    with torch.no_grad():
        fake, real = qat(clips), int8_model(clips)
    layers = layer_by_layer_code_differences(qat, int8_model, clips)
    worst = max(fraction for _, fraction in layers.values())
    relative = float((real - fake).norm() / fake.norm())
    print(f"\nconverted int8 vs fake-quant model relative L2 error {relative:.2e}; layer by layer, at most "
          f"{100 * worst:.4f}% of a layer's codes differ")
    assert len(layers) > min_layers
    assert all(largest <= 1 for largest, _ in layers.values()), layers
    assert worst < 1e-3, layers
    assert relative < 0.05
    return worst
