"""Keys never on display: what holds a key shows it redacted in ``repr`` and in a traceback's
locals (``pytest -l``), while the SDKs still get the key itself."""

from __future__ import annotations

import pickle
import traceback

import pytest

from extractbench.cli.profile import load_keys
from extractbench.endpoints.clients import Endpoint
from extractbench.measure.fleet import Keys, Live
from extractbench.secret import Secret


def test_a_secret_is_its_value_to_code_and_redacted_to_eyes() -> None:
    s = Secret("fake-live-abcdef0123456789")
    assert s == "fake-live-abcdef0123456789"
    assert f"Bearer {s}" == "Bearer fake-live-abcdef0123456789"
    assert "abcdef" not in repr(s) and "abcdef" not in repr((("attacker-0", s),))
    with pytest.raises(TypeError):
        pickle.dumps(s)


def _fails_holding(keys: Keys, live: Live) -> None:
    pair = keys.attacker[0]
    raise RuntimeError(f"boom near {pair[0]}")


def test_run_local_keys_do_not_show_in_a_traceback_with_locals() -> None:
    keys = Keys.mint(2, 1)
    live = Live(Endpoint(api="openai", base_url="http://127.0.0.1:1/v1", model="m"),
                attacker_keys=keys.attacker, eval_key=keys.evaluator, prices=None)
    try:
        _fails_holding(keys, live)
    except RuntimeError as exc:
        text = "".join(traceback.TracebackException.from_exception(
            exc, capture_locals=True).format())
    secrets = [k for _, k in [*keys.attacker, keys.evaluator, *keys.benign]]
    assert "pair" in text and "attacker-0" in text  # the locals are shown ...
    assert not [s for s in secrets if s in text]  # ... but no key


def test_server_keys_from_every_source_are_secrets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "keys"
    f.write_text("b-0=fake-file-0123456789\n")
    keys = load_keys(["a-0=fake-flag-0123456789"], str(f), "EB_TEST_KEYS",
                     {"EB_TEST_KEYS": "c-0=fake-env-0123456789"})
    assert keys is not None and sorted(keys.values()) == ["a-0", "b-0", "c-0"]
    assert all(isinstance(k, Secret) for k in keys)
    assert "0123456789" not in repr(keys)
