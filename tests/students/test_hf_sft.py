"""The ``hf-sft`` student on a tiny randomly initialised GPT-2 built locally (nothing is
downloaded). Skipped when the optional extra (transformers, peft) is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

NEEDS = "hf-sft needs the optional extra: pip install 'extractbench[hf]'"
transformers = pytest.importorskip("transformers", reason=NEEDS)
pytest.importorskip("peft", reason=NEEDS)

from extractbench.students import TrainPair  # noqa: E402
from extractbench.students.hf_sft import HFSFTStudent  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level tokenizer and a 1-layer, 32-wide GPT-2, saved like a hub checkpoint."""
    transformers.utils.logging.disable_progress_bar()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    path = tmp_path_factory.mktemp("tiny-gpt2")
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    for special in ("<pad>", "<eos>"):
        vocab[special] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>",
                                                pad_token="<pad>")
    fast.save_pretrained(path)
    config = transformers.GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=32,
                                     n_layer=1, n_head=2, eos_token_id=vocab["<eos>"],
                                     bos_token_id=vocab["<eos>"],
                                     pad_token_id=vocab["<pad>"],
                                     # wide enough init that a frozen random model can become
                                     # confident through its LoRA adapters alone
                                     initializer_range=0.3)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(path)
    return path


def test_lora_training_learns_the_harvest(checkpoint: Path) -> None:
    pairs = [TrainPair("ping", "pong"), TrainPair("tick", "tock")] * 4
    student = HFSFTStudent(str(checkpoint), lora_r=4, lr=1e-2, batch_size=4, steps=60,
                           target_modules=["c_attn", "c_proj", "c_fc"])
    report = student.fit(pairs, seed=0)
    assert report.steps == 60
    first, final = report.details["first_loss"], report.details["final_loss"]
    assert final < 0.5 * first
    trainable = [n for n, p in student.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in n for n in trainable)  # only the adapters moved
    assert student.predict(["ping", "tick"], 4) == ["pong", "tock"]


def test_no_data_is_the_base_checkpoint(checkpoint: Path) -> None:
    student = HFSFTStudent(str(checkpoint))
    report = student.fit([], seed=0)
    assert report.steps == 0
    base = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint))
    for (name, p), q in zip(student.model.named_parameters(), base.parameters(), strict=True):
        assert torch.equal(p, q), name
    assert len(student.predict(["ping"], 3)) == 1


def test_a_missing_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"hf-sft: model_path .* not a local checkpoint") as e:
        HFSFTStudent(str(tmp_path / "nope"))
    assert "\n" not in str(e.value)
