"""One formulation for every caller: what zoo-analyze scores is exactly what the run trained and evaluated on."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_module

import zoo.models.load
import zoo.research.structure_cli as analysis_cli
import zoo.task_kinds.classification as classification
from zoo.models.language import VOCABULARY
from zoo.models.tokenizer import word_tokenizer
from zoo.runner.config import store_configs
from zoo.runner.run import run

CHAT_WORDS = ["SYSTEM", "USER", "ASSISTANT", "END", "be", "terse"]
CHAT = (
    "{% for m in messages %}{{ m['role'] | upper }} {{ m['content'] }} END {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT{% endif %}"
)


@pytest.fixture
def chat_tokenizer(monkeypatch):
    """The built-in tiny models' word tokenizer, given a chat template (as a hub model's has)."""

    def with_chat(vocabulary):
        tokenizer = word_tokenizer(list(vocabulary) + CHAT_WORDS)
        tokenizer.chat_template = CHAT
        return tokenizer

    monkeypatch.setattr(zoo.models.load, "word_tokenizer", with_chat)
    return with_chat


def _spy_batches(monkeypatch, module) -> list[list[dict]]:
    """Every list of batches ``module``'s evaluate scores, in call order."""
    seen, evaluate = [], module.evaluate

    def spy(model, batches, *args, **kwargs):
        seen.append(batches)
        return evaluate(model, batches, *args, **kwargs)

    monkeypatch.setattr(module, "evaluate", spy)
    return seen


def test_zoo_analyze_scores_the_prompts_the_run_trained_on(tmp_path, monkeypatch, chat_tokenizer):
    store_configs()
    overrides = [
        "trainer=smoke",
        "trainer.progress=false",
        "model.pretrain_steps=0",
        "task.n_train=16",
        "task.n_eval=8",
        "task.chat_template=true",
        "task.system_prompt=be terse",
        "task.demonstrations=1",
        "task.max_length=256",
        "predictions_cache=null",
    ]
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose("config", overrides=overrides)
    run_batches = _spy_batches(monkeypatch, classification)
    record = run(cfg, tmp_path / "run")
    analysed = _spy_batches(monkeypatch, analysis_cli)
    assert analysis_cli.main(["--run", str(tmp_path / "run"), "--out", str(tmp_path / "structure"), "--experiments", "all"]) == 0

    trained_on = torch.cat([b["input_ids"] for b in run_batches[-1]])
    scored = torch.cat([b["input_ids"] for b in analysed[1]])  # [0]: the base model, [1]: the tuned one
    assert torch.equal(trained_on, scored)
    tokens = [t for t in chat_tokenizer(VOCABULARY).convert_ids_to_tokens(scored[0].tolist()) if t != "<pad>"]
    assert tokens[:4] == ["SYSTEM", "be", "terse", "END"] and tokens[-1] == "ASSISTANT"  # the system turn, the answer's turn
    assert (
        tokens.count("USER") == tokens.count("review") == 1 + len(record.label_names)
    )  # a turn per demonstration, then the query


def test_the_proxy_benchmark_scores_the_prompts_the_run_trained_on(tmp_path, monkeypatch, chat_tokenizer):
    """benchmarks/proxy_gain.py tunes and scores its models through the same formulation as a zoo run of its task."""
    from omegaconf import OmegaConf

    from benchmarks import proxy_gain
    from zoo.methods.lora import LoRAConfig
    from zoo.models.tiny import tiny_model
    from zoo.tasks.config import TaskConfig
    from zoo.training.loop import TrainerConfig

    task = TaskConfig(n_train=16, n_eval=8, chat_template=True, system_prompt="be terse", demonstrations=1, max_length=256)
    trainer = TrainerConfig(max_steps=1, batch_size=16, checkpoint_every=0, progress=False, device="cpu")
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose(
            "config",
            overrides=[
                "trainer=smoke",
                "trainer.progress=false",
                "model.pretrain_steps=0",
                "task.n_train=16",
                "task.n_eval=8",
                "task.chat_template=true",
                "task.system_prompt=be terse",
                "task.demonstrations=1",
                "task.max_length=256",
                "predictions_cache=null",
            ],
        )
    run_batches = _spy_batches(monkeypatch, classification)
    run(cfg, tmp_path / "run")

    tokenizer = chat_tokenizer(VOCABULARY)
    large = tiny_model("tiny-llama", vocab_size=len(tokenizer), seed=0)
    scored = _spy_batches(monkeypatch, proxy_gain)
    setup = OmegaConf.create(
        {
            "method": OmegaConf.structured(LoRAConfig()),
            "task": OmegaConf.structured(task),
            "trainer": OmegaConf.structured(trainer),
            "proxy": {"alphas": [1.0]},
        }
    )
    proxy_gain.seed_run(setup, 0, large, proxy_gain.truncated_copy(large, 1), tokenizer, tmp_path / "proxy")
    trained_on = torch.cat([b["input_ids"] for b in run_batches[-1]])
    assert all(torch.equal(trained_on, torch.cat([b["input_ids"] for b in batches])) for batches in scored) and len(scored) == 5
