"""Bounded memory and batch behaviour of predict_batch: chunks, order, peak RSS in a real process."""

import subprocess
import sys

import numpy as np
import pytest

from edgekit.runtime import EdgeModel
from edgekit.runtime.batching import plan_chunks
from edgekit.runtime.invariance import batch_consistency

WORDS = "the film was good bad great awful weather today turn off lights music very really".split()


def _texts(count: int, seed: int = 0, longest: int = 60) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, longest))) for _ in range(count)]


def test_chunks_respect_rows_and_padded_tokens():
    sizes = [5, 60, 7, 64, 3, 30, 12, 64, 2, 9] * 7
    chunks = plan_chunks(sizes, max_rows=8, max_tokens=200)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(sizes))), "every row exactly once"
    for chunk in chunks:
        assert len(chunk) <= 8
        assert len(chunk) == 1 or len(chunk) * max(sizes[i] for i in chunk) <= 200
    assert plan_chunks([3, 1, 2], 8, 200) == [[0, 1, 2]], "a batch that fits keeps the caller's order"
    assert plan_chunks([500], 8, 200) == [[0]], "a row over the token bound still runs, alone"


def test_chunked_batches_equal_one_padded_batch_in_the_callers_order(tiny_artifact):
    texts = _texts(150)
    chunked = EdgeModel.load(tiny_artifact, threads=1, max_batch_rows=7, max_batch_tokens=100)
    whole = EdgeModel.load(tiny_artifact, threads=1, max_batch_rows=1000, max_batch_tokens=10**6)
    assert chunked.settings.max_batch_rows == 7 and chunked.settings.max_batch_tokens == 100
    np.testing.assert_allclose(chunked.logits(texts), whole.logits(texts), atol=1e-5)
    singles = [chunked.predict(t).label_id for t in texts]
    assert [p.label_id for p in chunked.predict_batch(texts)] == singles


def test_bad_batch_bounds_are_refused(tiny_artifact):
    from edgekit.errors import InputError

    with pytest.raises(InputError, match="max_batch_rows must be a positive int"):
        EdgeModel.load(tiny_artifact, max_batch_rows=0)


def test_non_invariant_artifacts_run_row_by_row(tiny_artifact):
    model = EdgeModel.load(tiny_artifact, threads=1, batch_invariant=False)
    assert not model.settings.batch_invariant and model.settings.batch_invariant_source == "the caller"
    report = batch_consistency(model, _texts(40), batch_sizes=(16,))
    assert report["max_abs_score_diff"] == 0.0 and report["label_flips"] == 0 and report["rows"] == 40


# One process predicts 10,000 long texts and reports its peak RSS (VmHWM). Padding all of them
# into one batch (the old predict_batch) took over 1 GiB with the tiny model; chunks take a few MiB
# over the ~150 MiB the interpreter, onnxruntime and tokenizers need.
_PEAK_SCRIPT = """
import sys
from edgekit.runtime import EdgeModel
model = EdgeModel.load(sys.argv[1], threads=1)
words = "the film was good bad great awful weather today turn off lights music very really".split()
texts = [" ".join(words[(i + j) % len(words)] for j in range(40 + i % 30)) for i in range(10_000)]
predictions = model.predict_batch(texts)
assert len(predictions) == 10_000
status = open("/proc/self/status").read()
print(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) // 1024)
"""
PEAK_RSS_BOUND_MIB = 400


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_ten_thousand_texts_stay_within_a_memory_bound(tiny_artifact):
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(tiny_artifact)], capture_output=True, text=True, check=True
    )
    peak_mib = int(result.stdout.split()[-1])
    assert peak_mib < PEAK_RSS_BOUND_MIB, f"predict_batch of 10,000 texts peaked at {peak_mib} MiB"
