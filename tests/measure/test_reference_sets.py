"""A defense tuned on a reference set never gets the content the benchmark scores on: the
fleet drops from misinformation's set every prompt whose content any cell (any task, any seed)
holds out. The audit found 22 and 29 held-out tickets in the set at seeds 1 and 2."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from extractbench.config.scenario import load_scenario
from extractbench.defenses import DEFENSES
from extractbench.measure.fleet import Fleet
from extractbench.measure.tasks import TaskBank
from extractbench.tasks import HeldOutContent

SCENARIO = """
version: 1
name: refsets
endpoints:
  misinfo:
    kind: reference
    defenses:
      - name: misinformation
        params:
          threshold: 0.2
          reference_task: {family: classification, params: {products: 120}, n: 600}
tasks:
  cls: {family: classification, params: {products: 120}, attack_pool: 400, heldout: 300,
        benign: 100}
attacks:
  rp: {name: random-pool}
budgets: [{queries: 30}]
students:
  s: {name: linear}
seeds: [0, 1, 2]
"""


def test_the_reference_set_holds_no_held_out_content_of_any_seed(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    sc = load_scenario(path)
    tasks = TaskBank(sc)
    plain = DEFENSES.create("misinformation", dict(sc.endpoints["misinfo"].defenses[0].params))
    held = [HeldOutContent(tasks.get("cls", seed)) for seed in sc.seeds]
    leaks = [sum(h.forbids(p) is not None for p in plain._prompts) for h in held]
    assert leaks[0] == 0 and sum(leaks[1:]) > 0  # seed 0's benign split; other seeds leak

    with ExitStack() as stack:
        fleet = Fleet(sc, path, tmp_path / "run", tasks, stack)
        (tmp_path / "run").mkdir()
        built = fleet._defense_stack("misinfo", sc.endpoints["misinfo"])
        assert built is not None
        [defense] = built.defenses
        kept = defense._prompts
        assert len(kept) == len(plain._prompts) - sum(
            any(h.forbids(p) is not None for h in held) for p in plain._prompts)
        assert all(h.forbids(p) is None for h in held for p in kept)
        assert defense.reference_size == len(kept)
