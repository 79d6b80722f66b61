"""Random identifiers for decisions and requests, cheap enough for the hot path.

``uuid.uuid4().hex`` reads 16 bytes from the kernel per call, a system call that also
releases the GIL: under load every decision then waits for its turn to take the GIL
back. :func:`new_id` reads 4 KiB at a time and slices 128 bits per identifier: the same
unpredictable, uniformly random 32 hex characters, one system call per 256 of them.
"""

from __future__ import annotations

import os
import threading

_CHUNK = 16 * 256
_lock = threading.Lock()
_buffer = b""
_offset = _CHUNK


def new_id() -> str:
    """32 lowercase hex characters of fresh randomness (128 bits), like ``uuid4().hex``
    without the version bits."""
    global _buffer, _offset
    with _lock:
        if _offset >= _CHUNK:
            _buffer, _offset = os.urandom(_CHUNK), 0
        start = _offset
        _offset = start + 16
        return _buffer[start : start + 16].hex()


def _forget_after_fork() -> None:
    """A forked child must not hand out the parent's unused identifiers (nor inherit the
    lock held by a thread that does not exist in it)."""
    global _buffer, _offset, _lock
    _buffer, _offset, _lock = b"", _CHUNK, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
