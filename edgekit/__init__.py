"""edgekit: take a fine-tuned model to an edge device and prove how fast and accurate it is there.

This package root stays import-light (no torch, no transformers) because the slim
runtime, ``edgekit.runtime``, is installed on devices without them.
"""

__version__ = "0.1.0"
