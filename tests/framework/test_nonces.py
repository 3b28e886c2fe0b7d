"""Buffered nonces: unique, the requested size, and never shared with a forked child."""

from __future__ import annotations

import os
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.framework import nonce_bytes
from strongroom.framework._nonces import _CHUNK


@given(st.lists(st.integers(min_value=0, max_value=_CHUNK), max_size=50))
def test_sizes(sizes: list[int]) -> None:
    assert [len(nonce_bytes(size)) for size in sizes] == sizes


def test_no_nonce_repeats_across_refills() -> None:
    drawn = [nonce_bytes(12) for _ in range(3 * _CHUNK // 12 + 7)]  # several refills
    assert len(set(drawn)) == len(drawn)


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError):
        nonce_bytes(-1)


def test_a_forked_child_does_not_reuse_the_parents_buffer() -> None:
    nonce_bytes(12)  # the parent now holds a partly used buffer
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() once any thread runs (the child here only writes)
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report its next nonce and leave at once
        try:
            os.write(write_end, nonce_bytes(12))
        finally:
            os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 12)
    os.close(read_end)
    os.waitpid(pid, 0)
    parent = nonce_bytes(12)
    assert len(child) == 12 and child != parent
