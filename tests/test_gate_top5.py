"""The gate's top-5 overlap: reported for heads with more than 5 labels, absent for small heads."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.convert.gate import judge, top_k_overlap


def test_overlap_counts_labels_kept_in_the_top5_whatever_their_order():
    reference = np.array([[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]], dtype=np.float64)
    reordered = np.array([[5, 6, 7, 8, 9, 4, 3, 2, 1, 0]], dtype=np.float64)  # same five, reversed
    swapped = np.array([[9, 8, 7, 6, 4, 5, 3, 2, 1, 0]], dtype=np.float64)  # rank 5 and 6 swap
    assert top_k_overlap(reordered, reference, 5) == 1.0
    assert top_k_overlap(swapped, reference, 5) == 0.8
    report = judge("int8", np.vstack([reordered, swapped]), np.vstack([reference, reference]), [0, 0], 1.0)
    assert report.top5_overlap == 0.9
    assert "top-5 overlap 0.9000" in report.summary()
    assert report.to_dict()["top5_overlap"] == 0.9


def test_a_small_head_has_no_top5_figure():
    logits = np.array([[0.1, 0.9], [0.8, 0.2]])
    report = judge("int8", logits, logits, None, 1.0)
    assert report.top5_overlap is None
    assert "top-5" not in report.summary()


# Rows of distinct values (a tie at rank 5 has no single top-5): each row a permutation of 0..11.
unique_rows = st.lists(st.permutations(range(12)), min_size=4, max_size=4).map(lambda r: np.array(r, dtype=float))


@settings(max_examples=60, deadline=None)
@given(unique_rows, unique_rows)
def test_overlap_is_a_symmetric_share_and_one_on_itself(a, b):
    overlap = top_k_overlap(a, b, 5)
    assert 0.0 <= overlap <= 1.0
    assert overlap == top_k_overlap(b, a, 5)
    assert top_k_overlap(a, a, 5) == 1.0
    assert abs(overlap * 20 - round(overlap * 20)) < 1e-9  # whole labels of 4 rows x 5
