"""Structured pruning of BERT-family classifiers: fewer heads, narrower FFN, still a dense model."""

from edgekit.train.prune.apply import prune_model
from edgekit.train.prune.structure import keep_count

__all__ = ["keep_count", "prune_model"]
