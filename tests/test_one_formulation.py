"""One formulation for every caller: what zoo-analyze scores is exactly what the run trained and evaluated on."""
from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_module

import zoo.analysis.cli as analysis_cli
import zoo.models.load
import zoo.pipeline.steps
from zoo.config import store_configs
from zoo.models.tokenizer import word_tokenizer
from zoo.run import run
from zoo.tasks.synthetic import VOCABULARY

CHAT_WORDS = ["SYSTEM", "USER", "ASSISTANT", "END", "be", "terse"]
CHAT = ("{% for m in messages %}{{ m['role'] | upper }} {{ m['content'] }} END {% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT{% endif %}")


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
    overrides = ["trainer=smoke", "trainer.progress=false", "model.pretrain_steps=0", "task.n_train=16", "task.n_eval=8",
                 "task.chat_template=true", "task.system_prompt=be terse", "task.demonstrations=1", "task.max_length=256",
                 "predictions_cache=null"]
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose("config", overrides=overrides)
    run_batches = _spy_batches(monkeypatch, zoo.pipeline.steps)
    record = run(cfg, tmp_path / "run")
    analysed = _spy_batches(monkeypatch, analysis_cli)
    assert analysis_cli.main(["--run", str(tmp_path / "run"), "--out", str(tmp_path / "structure"), "--experiments", "all"]) == 0

    trained_on = torch.cat([b["input_ids"] for b in run_batches[-1]])
    scored = torch.cat([b["input_ids"] for b in analysed[1]])  # [0]: the base model, [1]: the tuned one
    assert torch.equal(trained_on, scored)
    tokens = [t for t in chat_tokenizer(VOCABULARY).convert_ids_to_tokens(scored[0].tolist()) if t != "<pad>"]
    assert tokens[:4] == ["SYSTEM", "be", "terse", "END"] and tokens[-1] == "ASSISTANT"  # the system turn, the answer's turn
    assert tokens.count("USER") == tokens.count("review") == 1 + len(record.label_names)  # a turn per demonstration, then the query
