"""Bounded chunks for batch inference: peak memory follows the settings, not the caller's list."""

from __future__ import annotations

from collections.abc import Sequence


def plan_chunks(sizes: Sequence[int], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Group row indices into engine calls of at most ``max_rows`` rows and ``max_tokens`` padded tokens.

    ``sizes`` are the rows' unpadded lengths; a chunk is padded to its longest row, so it costs
    ``rows x longest``. Rows are sorted by length first, which keeps padding (wasted compute
    and memory) small. A batch that already fits in one chunk is kept in the caller's order.
    A single row longer than ``max_tokens`` still runs, alone (rows are never split).
    """
    count = len(sizes)
    if count == 0:
        return []
    if count <= max_rows and count * max(sizes) <= max_tokens:
        return [list(range(count))]
    chunks: list[list[int]] = []
    current: list[int] = []
    width = 0
    for index in sorted(range(count), key=sizes.__getitem__):  # ascending: the newest row is the widest
        size = sizes[index]
        if current and (len(current) >= max_rows or (len(current) + 1) * max(width, size) > max_tokens):
            chunks.append(current)
            current, width = [], 0
        current.append(index)
        width = max(width, size)
    chunks.append(current)
    return chunks
