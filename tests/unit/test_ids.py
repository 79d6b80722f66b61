"""Identifiers from tether.ids: unique, 128 random bits as 32 hex characters, fork-safe."""

from __future__ import annotations

import os
import re

from tether.ids import new_id


def test_ids_are_32_hex_characters_and_unique() -> None:
    ids = [new_id() for _ in range(5000)]  # spans many refills of the buffer
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    new_id()  # the parent holds a partly used buffer
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child != new_id()
