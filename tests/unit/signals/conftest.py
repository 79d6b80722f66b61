"""Fixtures for the Shared Signals tests: a key ring and transmitters on each backend."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from signal_support import ISSUER, SetReceiver
from tether.signals import Transmitter
from tether.tokens import KeyRing, load_or_create_master_key
from token_support import Clock

TransmitterFactory = Callable[..., Transmitter]


@pytest.fixture
def master_key() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def keys(store: Engine, tmp_path: Path) -> KeyRing:
    return KeyRing(store, load_or_create_master_key(tmp_path / "master.key"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_transmitter(
    store: Engine, keys: KeyRing, master_key: bytes
) -> Iterator[TransmitterFactory]:
    made: list[Transmitter] = []

    def make(**options: Any) -> Transmitter:
        options.setdefault("retry_base_s", 0.2)
        transmitter = Transmitter(store, keys, issuer=ISSUER, master_key=master_key, **options)
        made.append(transmitter)
        return transmitter

    yield make
    for transmitter in made:
        transmitter.close()


@pytest.fixture
def receivers(keys: KeyRing) -> Iterator[Callable[..., SetReceiver]]:
    """Real push endpoints verifying against the key ring's JWKS."""
    started: list[SetReceiver] = []

    def start(**options: Any) -> SetReceiver:
        receiver = SetReceiver(keys.jwks, **options)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()
