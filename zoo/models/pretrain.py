"""A tiny causal LM that has read the synthetic language before any method touches it.

PEFT methods steer what a pretrained model already represents; a frozen *random* model
gives a soft prompt or an adapter nothing to steer (on the default task prompt tuning
stayed at chance there). So the default run's tiny model is first trained by plain
next-token prediction on synthetic reviews followed by verdicts in other formats than the
task's template (``overall : good``, ``verdict : positive``, ``liked ? yes``) or by nothing.
It learns the words and that reviews carry a polarity, never the task's own
``it was {good/bad}``, so zero-shot stays at chance and the methods have something to learn.

The verdict is learnt late and suddenly: tiny-llama predicts it at chance for the first
~1000 steps, then reaches 0.95 by 3000 steps (lr 3e-3, one-cycle schedule; a 1500-step run, at lr 3e-3 or
1e-2, stayed at chance). Hence 3000 steps, the
default of ``model.pretrain_steps``. tiny-gpt2 was still at chance after 3000 steps, so its
config keeps random weights. Built once per (kind, vocabulary, seed, steps) and cached:
about a minute on two idle CPU cores.
"""
from __future__ import annotations

import hashlib
import logging
import random
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from zoo.atomic import replace_dir
from zoo.models.tiny import tiny_model
from zoo.tasks.synthetic import review

log = logging.getLogger(__name__)
CORPUS_VERSION = 1  # bump when the corpus or the recipe changes: cached models are rebuilt
VERDICTS = [("{r} . overall : {v}", ("bad", "good")), ("{r} . verdict : {v}", ("negative", "positive")),
            ("{r} . liked ? {v}", ("no", "yes")), ("{r} .", None)]
BATCH = 64


def corpus(n: int, seed: int) -> list[str]:
    """``n`` synthetic reviews, each followed by a verdict in one of three formats or by none."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        positive = rng.random() < 0.5
        fmt, words = rng.choice(VERDICTS)
        texts.append(fmt.format(r=review(rng, positive), v=words[positive] if words else ""))
    return texts


def pretrained_tiny(kind: str, tokenizer, seed: int, steps: int, cache_dir: str | Path) -> PreTrainedModel:
    """The tiny causal LM ``kind`` after ``steps`` of next-token prediction on :func:`corpus`, cached."""
    key = hashlib.sha256(f"{kind}|{len(tokenizer)}|{seed}|{steps}|{CORPUS_VERSION}".encode()).hexdigest()[:12]
    folder = Path(cache_dir).expanduser() / f"{kind}-lm-{key}"
    if (folder / "config.json").is_file():
        return AutoModelForCausalLM.from_pretrained(folder).eval()
    log.info("pretraining %s for %d steps on the synthetic corpus (once; cached in %s)", kind, steps, folder)
    model = tiny_model(kind, vocab_size=len(tokenizer), seed=seed).train()
    texts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in corpus(40 * BATCH * 16, seed)]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.1)
        rng = random.Random(seed)
        for _ in range(steps):
            batch = [texts[rng.randrange(len(texts))] for _ in range(BATCH)]
            width = max(map(len, batch))
            ids = torch.full((BATCH, width), tokenizer.pad_token_id, dtype=torch.long)
            for row, text in enumerate(batch):
                ids[row, : len(text)] = torch.tensor(text)
            labels = ids.masked_fill(ids == tokenizer.pad_token_id, -100)
            model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    model.save_pretrained(staging)
    replace_dir(staging, folder)
    return model.eval()
