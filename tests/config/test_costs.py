"""The worst-case cost estimate and the spending guard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from extractbench.cli.main import main
from extractbench.config.costs import (
    INPUT_OVERHEAD_TOKENS,
    SpendError,
    check_spend,
    estimate_cost,
    worst_case_usd,
)
from extractbench.config.scenario import Scenario, load_scenario
from extractbench.tasks import TASKS

ROOT = Path(__file__).resolve().parents[2]
SIZES = {"attack_pool": 40, "heldout": 10, "benign": 5}


def scenario(budgets: list[dict[str, float]], *, kind: str = "remote",
             seeds: tuple[int, ...] = (0,), attack_params: dict[str, Any] | None = None,
             max_usd: float | None = None, defenses: list[dict[str, Any]] | None = None,
             prices: tuple[float, float] = (1.0, 3.0)) -> Scenario:
    price = {"input_per_mtok": prices[0], "output_per_mtok": prices[1]}
    if kind == "remote":
        endpoint: dict[str, Any] = {"kind": "remote", "api": "openai", "model": "m",
                                    "base_url": "https://example.invalid/v1",
                                    "api_key_env": "UNSET_KEY_FOR_TEST", "prices": price}
    else:
        endpoint = {"kind": "reference", "prices": price, "defenses": defenses or []}
    return Scenario.model_validate({
        "version": 1, "name": "cost-test", "endpoints": {"e": endpoint},
        "tasks": {"t": {"family": "arithmetic", "params": {"digits": 2, "ops": ["+"]}, **SIZES}},
        "attacks": {"a": {"name": "random-pool", "params": attack_params or {}}},
        "budgets": budgets, "students": {"s": {"name": "tinylm"}}, "seeds": list(seeds),
        "max_usd": max_usd,
    })


def request_usd(split: str, max_tokens: int | None = None, seed: int = 0,
                prices: tuple[float, float] = (1.0, 3.0)) -> float:
    """The formula of the module docstring, computed here from the task itself."""
    task = TASKS.get("arithmetic")(seed, SIZES, digits=2, ops=["+"])
    prompt = max(len(i.prompt.encode()) for i in task.split(split))  # type: ignore[arg-type]
    out = task.max_answer_tokens if max_tokens is None else max_tokens
    return ((prompt + INPUT_OVERHEAD_TOKENS) * prices[0] + out * prices[1]) / 1e6


def test_query_budget_formula_and_parts() -> None:
    estimate = estimate_cost(scenario([{"queries": 100}, {"queries": 1000}]))
    assert estimate.cells == 2
    assert estimate.attack == pytest.approx(1100 * request_usd("attack_pool"))
    # held-out evaluated once per (endpoint, task, seed), as teacher and as defended (remote)
    assert estimate.teacher_eval == pytest.approx(10 * request_usd("heldout"))
    assert estimate.defended_eval == pytest.approx(estimate.teacher_eval)
    assert estimate.benign == pytest.approx(2 * 5 * request_usd("benign"))
    assert estimate.total == pytest.approx(
        estimate.attack + estimate.teacher_eval + estimate.defended_eval + estimate.benign)
    assert estimate.by_endpoint == {"e": pytest.approx(estimate.total)}


def test_usd_and_token_limits_bound_the_attack() -> None:
    capped = estimate_cost(scenario([{"queries": 10**6, "usd": 0.25}]))
    assert capped.attack == pytest.approx(0.25)
    tokens = estimate_cost(scenario([{"tokens": 50_000}]))
    assert tokens.attack == pytest.approx(50_000 * 3.0 / 1e6)  # the larger of the two prices
    both = estimate_cost(scenario([{"queries": 10, "tokens": 10**9}]))
    assert both.attack == pytest.approx(10 * request_usd("attack_pool"))


def test_attack_max_tokens_and_seeds_count() -> None:
    long = estimate_cost(scenario([{"queries": 100}], attack_params={"max_tokens": 500},
                                  seeds=(0, 1)))
    expected = 100 * (request_usd("attack_pool", 500, 0) + request_usd("attack_pool", 500, 1))
    assert long.attack == pytest.approx(expected)
    assert long.teacher_eval == pytest.approx(
        10 * (request_usd("heldout", seed=0) + request_usd("heldout", seed=1)))


def test_reference_endpoint_is_free_unless_priced_and_defended_eval_needs_a_stack() -> None:
    free = estimate_cost(scenario([{"queries": 100}], kind="reference", prices=(0.0, 0.0)))
    assert free.total == 0
    plain = estimate_cost(scenario([{"queries": 100}], kind="reference"))
    assert plain.defended_eval == 0 and plain.teacher_eval > 0
    guarded = estimate_cost(scenario([{"queries": 100}], kind="reference",
                                     defenses=[{"name": "rate-limit"}]))
    assert guarded.defended_eval == pytest.approx(guarded.teacher_eval)


def test_check_spend_refuses_with_one_line() -> None:
    sc = scenario([{"queries": 10**6}], max_usd=1.0)
    total = worst_case_usd(sc)
    with pytest.raises(SpendError) as info:
        check_spend(sc)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"estimated worst-case cost ${total:,.2f} exceeds max_usd $1.00")
    assert "raise max_usd" in message
    assert check_spend(sc, cells=[]).total == 0  # nothing will run: nothing to refuse
    assert check_spend(scenario([{"queries": 10**6}])).total == pytest.approx(total)  # no limit


def test_vendor_scenario_fits_its_own_guard_and_validates(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    path = ROOT / "scenarios" / "vendors.yaml"
    sc = load_scenario(path)
    estimate = check_spend(sc)
    assert sc.max_usd is not None and 0 < estimate.total <= sc.max_usd
    assert set(estimate.by_endpoint) == set(sc.endpoints)
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert "ok (15 cells)" in captured.out
    assert "OPENAI_API_KEY is not set" in captured.err
    assert "ANTHROPIC_API_KEY is not set" in captured.err


# ------------------------------------------------------------------------------ accounts


def accounts_scenario(keys: int, budget: dict[str, float], account_usd: float = 2.0) -> Scenario:
    data = scenario([budget]).model_dump(mode="json")
    data["endpoints"]["e"]["prices"]["account_usd"] = account_usd
    data["attacks"]["a"]["keys"] = keys
    return Scenario.model_validate(data)


def test_the_estimate_charges_every_key_of_an_attack_as_an_account() -> None:
    # 8 keys at $2 each on top of 100 queries; a usd budget includes the accounts
    estimate = estimate_cost(accounts_scenario(8, {"queries": 100}))
    assert estimate.attack == pytest.approx(16.0 + 100 * request_usd("attack_pool"))
    assert estimate_cost(accounts_scenario(8, {"queries": 100, "usd": 20.0})).attack == \
        pytest.approx(min(20.0, 16.0 + 100 * request_usd("attack_pool")))


@pytest.mark.parametrize(("keys", "budget", "problem"), [
    (8, {"queries": 100, "accounts": 4},
     r"budgets.0.accounts: q100\+a4 allows 4 accounts but attack 'a' uses 8 keys"),
    (8, {"queries": 100, "usd": 16.0},
     r"budgets.0.usd: \$16 leaves nothing for queries once attack 'a' has paid for its 8 "
     r"accounts \(\$16 at endpoints.e.prices.account_usd\)"),
])
def test_a_budget_must_cover_the_attacks_accounts(keys: int, budget: dict[str, float],
                                                  problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        accounts_scenario(keys, budget)
    assert accounts_scenario(4, {"queries": 100, "accounts": 4}).budgets[0].label() == "q100+a4"
