"""Byte-level tokenizer shared by the reference teachers and the ``tinylm`` student.

Ids 0..255 are raw bytes; a few special ids follow. The vocabulary (260) is larger than the
models' hidden size, so logit-harvesting attacks meet a real softmax bottleneck.
"""

from __future__ import annotations

PAD = 256
BOS = 257
SEP = 258  # end of prompt, start of response
EOS = 259
VOCAB_SIZE = 260

SPECIAL_NAMES = {PAD: "<pad>", BOS: "<bos>", SEP: "<sep>", EOS: "<eos>"}


def encode(text: str) -> list[int]:
    """UTF-8 bytes of ``text`` as token ids."""
    return list(text.encode("utf-8"))


def decode(ids: list[int]) -> str:
    """Text of byte ids; special ids are dropped, broken UTF-8 is replaced."""
    return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


def prompt_ids(prompt: str, max_prompt: int) -> list[int]:
    """Model input for a prompt: ``<bos> prompt-bytes <sep>``, keeping the prompt's tail."""
    body = encode(prompt)[-(max_prompt - 2) :]
    return [BOS, *body, SEP]


def token_str(token_id: int) -> str:
    """Display string of one token (a byte shown as its latin-1 character)."""
    if token_id in SPECIAL_NAMES:
        return SPECIAL_NAMES[token_id]
    return bytes([token_id]).decode("latin-1")


def token_bytes(token_id: int) -> list[int]:
    """Raw bytes of one token, as the OpenAI logprobs ``bytes`` field carries them."""
    return [token_id] if token_id < 256 else []


def token_id(token: str) -> int | None:
    """Inverse of :func:`token_str`; ``None`` for a string that is not one token."""
    for tid, name in SPECIAL_NAMES.items():
        if token == name:
            return tid
    raw = token.encode("latin-1", errors="ignore")
    if len(raw) == 1 and len(token) == 1:
        return raw[0]
    return None
