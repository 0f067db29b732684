"""The slim runtime a device app embeds: numpy, tokenizers and onnxruntime only.

    from edgekit.runtime import EdgeModel
    model = EdgeModel.load("artifacts/onnx-fp32", threads=2)
    model.predict("turn off the lights")   # Prediction(label=..., label_id=..., scores=...)

Nothing here may import torch or transformers (a test enforces it).
"""

from edgekit.runtime.model import EdgeModel, Prediction

__all__ = ["EdgeModel", "Prediction"]
