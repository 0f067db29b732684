"""EfficientNet-Lite0 for the benchmarks' worker processes, importable by a short module name.

The benchmark scripts put this folder on their workers' PYTHONPATH, so the factory spec
``efficientnet_factory:efficientnet_lite0`` loads there. The model is edgekit's own demo factory
(``edgekit.demo.cnn``): the Lite network with its ReLU6 activations, as its authors built it.
"""

from edgekit.demo.cnn import efficientnet_lite0

__all__ = ["efficientnet_lite0"]
