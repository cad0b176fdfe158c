"""Budget arithmetic: every limit binds, and worst-case reservation never overspends."""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from extractbench.config.budget import Budget, BudgetMeter, Prices, Spent


def test_budget_validation() -> None:
    with pytest.raises(ValidationError, match="at least one"):
        Budget()
    for bad in ({"queries": 0}, {"tokens": -5}, {"usd": 0.0}, {"queries": 5, "dollars": 1}):
        with pytest.raises(ValidationError):
            Budget.model_validate(bad)
    b = Budget(queries=5)
    with pytest.raises(ValidationError):
        b.queries = 6  # type: ignore[misc]


def test_labels() -> None:
    assert Budget(queries=500).label() == "q500"
    assert Budget(tokens=20000).label() == "t20000"
    assert Budget(usd=0.5).label() == "usd0.50"
    assert Budget(usd=0.005).label() == "usd0.005"
    assert Budget(queries=500, tokens=20000, usd=2).label() == "q500+t20000+usd2.00"


def test_prices() -> None:
    p = Prices(input_per_mtok=2.0, output_per_mtok=8.0)
    assert p.cost(1_000_000, 0) == 2.0
    assert p.cost(500, 250) == pytest.approx((500 * 2 + 250 * 8) / 1e6)
    assert Prices().cost(10**9, 10**9) == 0.0


def test_query_limit_binds() -> None:
    m = BudgetMeter(Budget(queries=2))
    r1, r2 = m.reserve(10, 10), m.reserve(10, 10)
    assert r1 is not None and r2 is not None
    assert m.reserve(1, 1) is None and m.binding_limit(1, 1) == "queries"
    m.release(r1)  # never reached the endpoint: frees the slot
    r3 = m.reserve(1, 1)
    assert r3 is not None
    m.settle(r2, 3, 4)
    m.settle(r3, 1, 1)
    assert m.reserve(1, 1) is None
    assert m.spent() == Spent(queries=2, input_tokens=4, output_tokens=5, usd=0.0)
    assert m.remaining().queries == 0 and m.outstanding == 0


def test_token_limit_binds_on_worst_case() -> None:
    m = BudgetMeter(Budget(tokens=100))
    r = m.reserve(40, 50)
    assert r is not None
    assert m.reserve(5, 10) is None and m.binding_limit(5, 10) == "tokens"  # 90 + 15 > 100
    m.settle(r, 10, 20)  # the real usage frees the rest
    assert m.remaining().tokens == 70
    assert m.reserve(40, 30) is not None
    assert m.reserve(0, 1) is None


def test_usd_limit_binds() -> None:
    m = BudgetMeter(Budget(usd=1.0), Prices(input_per_mtok=1e5, output_per_mtok=1e6))
    r = m.reserve(5, 0)  # $0.50
    assert r is not None
    assert m.reserve(0, 1) is None and m.binding_limit(0, 1) == "usd"  # 0.50 + 1.00
    assert m.settle(r, 2, 0) == pytest.approx(0.2)
    assert m.reserve(9, 0) is None and m.reserve(8, 0) is not None  # 0.2 + 0.8 fits exactly
    assert m.remaining().usd == pytest.approx(0.0)


def test_every_set_limit_binds() -> None:
    m = BudgetMeter(Budget(queries=10, tokens=30))
    assert m.reserve(10, 10) is not None
    assert m.binding_limit(10, 10) == "tokens"


def test_settle_twice_is_an_error() -> None:
    m = BudgetMeter(Budget(queries=3))
    r = m.reserve(1, 1)
    assert r is not None
    m.settle(r, 1, 1)
    with pytest.raises(ValueError, match="already"):
        m.settle(r, 1, 1)
    with pytest.raises(ValueError, match="already"):
        m.release(r)


def test_restore_counts_earlier_spend() -> None:
    m = BudgetMeter(Budget(queries=3, usd=1.0))
    m.restore(Spent(queries=2, input_tokens=5, output_tokens=5, usd=0.25))
    assert m.reserve(0, 0) is not None and m.reserve(0, 0) is None
    assert m.spent().usd == 0.25


def _check_within(budget: Budget, spent: Spent) -> None:
    assert budget.queries is None or spent.queries <= budget.queries
    assert budget.tokens is None or spent.tokens <= budget.tokens
    assert budget.usd is None or spent.usd <= budget.usd + 1e-12


BUDGETS = [
    Budget(queries=37),
    Budget(tokens=1500),
    Budget(usd=0.003),
    Budget(queries=50, tokens=900),
]
PRICES = Prices(input_per_mtok=1.0, output_per_mtok=4.0)


@pytest.mark.parametrize("budget", BUDGETS, ids=lambda b: b.label())
def test_never_overspent_with_asyncio_gather(budget: Budget) -> None:
    m = BudgetMeter(budget, PRICES)
    rng = random.Random(0)

    async def one(i: int) -> bool:
        est_in, max_out = rng.randint(1, 40), rng.randint(1, 40)
        r = m.reserve(est_in, max_out)
        if r is None:
            return False
        await asyncio.sleep(rng.random() / 1000)
        m.settle(r, rng.randint(0, est_in), rng.randint(0, max_out))
        return True

    async def main() -> list[bool]:
        return list(await asyncio.gather(*(one(i) for i in range(500))))

    done = asyncio.run(main())
    assert any(done) and not all(done)
    assert m.spent().queries == sum(done) and m.outstanding == 0
    _check_within(budget, m.spent())


@pytest.mark.parametrize("budget", BUDGETS, ids=lambda b: b.label())
def test_never_overspent_with_threads(budget: Budget) -> None:
    m = BudgetMeter(budget, PRICES)

    def one(i: int) -> bool:
        rng = random.Random(i)
        est_in, max_out = rng.randint(1, 40), rng.randint(1, 40)
        r = m.reserve(est_in, max_out)
        if r is None:
            return False
        if rng.random() < 0.2:
            m.release(r)
            return False
        m.settle(r, rng.randint(0, est_in), max_out)
        return True

    with ThreadPoolExecutor(16) as pool:
        done = list(pool.map(one, range(2000)))
    assert m.spent().queries == sum(done) and m.outstanding == 0
    _check_within(budget, m.spent())
