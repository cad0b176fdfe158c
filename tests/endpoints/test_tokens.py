"""tiktoken estimates, offline."""

from __future__ import annotations

import socket

import pytest
import tiktoken.registry

from extractbench.endpoints import tokens
from extractbench.endpoints.tokens import estimate_tokens


def test_estimate_is_positive_and_deterministic() -> None:
    text = "The quick brown fox jumps over the lazy dog. 12345 + 678 = ?"
    n = estimate_tokens(text)
    assert n > 0 and n == estimate_tokens(text)
    assert estimate_tokens(text + text) > n
    assert estimate_tokens("") == 0


def test_special_token_text_counts_as_text() -> None:
    assert estimate_tokens("<|endoftext|>") > 1


def test_loads_without_network(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("estimate_tokens tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # no cache: read the bundled file itself
    tokens._encoding.cache_clear()
    monkeypatch.delitem(tiktoken.registry.ENCODINGS, tokens.ENCODING_NAME, raising=False)
    try:
        assert estimate_tokens("hello world") == 2
    finally:
        tokens._encoding.cache_clear()
