"""The slim runtime a device app embeds: numpy, tokenizers and one engine (onnxruntime, openvino, ...).

    from edgekit.runtime import EdgeModel
    model = EdgeModel.load("artifacts/onnx-fp32", threads=2)
    model.predict("turn off the lights")   # Prediction(label=..., label_id=..., scores=...)

Nothing here may import torch, transformers or pydantic (a test enforces it).
"""

from edgekit.runtime.classification import Prediction
from edgekit.runtime.model import EdgeModel

__all__ = ["EdgeModel", "Prediction"]
