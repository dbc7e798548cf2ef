"""Pretraining a tiny causal LM on the synthetic language, so PEFT methods have something to steer.

PEFT methods steer what a pretrained model already represents; a frozen *random* model
gives a soft prompt or an adapter nothing to steer (on the default task prompt tuning
stayed at chance there). So the default run's tiny model is first trained by next-token
prediction on synthetic reviews followed by a verdict in a format other than the task's
(``verdict : positive``, ``liked ? yes``) or by nothing. It learns the words and that
reviews carry a polarity, never the task's own ``it was {good/bad}`` (``good`` and ``bad``
never occur in the corpus), so zero-shot stays near chance and every method has something
to learn: mapping a polarity the model knows onto label words it has never used.

The recipe converges, and is checked to (:func:`check_learnt`). An earlier one (plain
next-token loss, 3000 steps) learnt the verdict late and suddenly, if at all: most of its
loss is the unpredictable neutral words, which drowned the one verdict token per review.
Here the verdict tokens' cross-entropy is added once more to the mean token loss
(:data:`VERDICT_WEIGHT`); tiny-llama then predicts every verdict format at >= 0.93 by step
500 and at 1.0 by step 1000, for seeds 0 and 1 alike. Training runs on one thread with a
seeded sampler, so the same torch build on the same CPU gives the same bits
(``python -m zoo.models.default_model --check`` verifies the shipped weights that way).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from zoo.models.language import review
from zoo.models.tiny import tiny_model

CORPUS_VERSION = 2  # bump when the corpus or the recipe changes: cached models are rebuilt
VERDICTS = [("{r} . verdict : {v}", ("negative", "positive")), ("{r} . liked ? {v}", ("no", "yes")), ("{r} .", None)]
"""Review formats of the corpus: a template and its (negative, positive) verdict words, or no verdict."""
CORPUS_SIZE = 20_000
BATCH = 64
LEARNING_RATE = 3e-3
VERDICT_WEIGHT = 1.0
"""Weight of the extra cross-entropy on verdict tokens, added to the mean next-token loss."""
MIN_STEPS = 20
"""Fewest pretraining steps the one-cycle schedule can take (its warm-up needs two)."""
LEARNT = 0.9
"""Verdict accuracy every format must reach (:func:`check_learnt`) before a model is used or cached."""


class PretrainingFailedError(RuntimeError):
    """A pretrained tiny model did not learn the polarity of a review; it is not used or cached."""


def corpus(n: int, seed: int) -> list[str]:
    """``n`` synthetic reviews, each followed by a verdict in one of the :data:`VERDICTS` formats or by none."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        positive = rng.random() < 0.5
        fmt, words = rng.choice(VERDICTS)
        texts.append(fmt.format(r=review(rng, positive), v=words[positive] if words else ""))
    return texts


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run on one CPU thread (reductions then add up in one fixed order), restoring the count after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def pretrain(kind: str, tokenizer, seed: int, steps: int, progress: bool = True) -> PreTrainedModel:
    """The tiny causal LM ``kind`` after ``steps`` of (verdict-weighted) next-token prediction on :func:`corpus`.

    Raises:
        ValueError: ``steps`` below :data:`MIN_STEPS`.
    """
    if steps < MIN_STEPS:
        raise ValueError(f"pretraining needs at least {MIN_STEPS} steps, got {steps}")
    model = tiny_model(kind, vocab_size=len(tokenizer), seed=seed).train()
    texts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in corpus(CORPUS_SIZE, seed)]
    verdict_ids = torch.tensor(tokenizer.convert_tokens_to_ids([w for _, words in VERDICTS if words for w in words]))
    with torch.random.fork_rng(), _one_thread():
        torch.manual_seed(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LEARNING_RATE, total_steps=steps, pct_start=0.1)
        rng = random.Random(seed)
        for _ in tqdm(range(steps), desc=f"pretraining {kind} (once)", disable=not progress):
            batch = [texts[rng.randrange(len(texts))] for _ in range(BATCH)]
            ids = torch.full((BATCH, max(map(len, batch))), tokenizer.pad_token_id, dtype=torch.long)
            for row, text in enumerate(batch):
                ids[row, : len(text)] = torch.tensor(text)
            labels = ids.masked_fill(ids == tokenizer.pad_token_id, -100)
            out = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels)
            targets = labels[:, 1:]
            verdict = torch.isin(targets, verdict_ids)
            loss = out.loss + VERDICT_WEIGHT * F.cross_entropy(out.logits[:, :-1][verdict], targets[verdict])
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    return model.eval()


@torch.no_grad()
def verdict_accuracy(model: PreTrainedModel, tokenizer, fmt: str, words: tuple[str, str], n: int = 200) -> float:
    """How often the model ranks the right one of ``words`` first after ``fmt`` on ``n`` fresh reviews."""
    rng = random.Random(123)  # not a training seed: these reviews are held out
    labels = [rng.random() < 0.5 for _ in range(n)]
    prompts = [tokenizer(fmt.format(r=review(rng, y), v="").strip(), add_special_tokens=False)["input_ids"] for y in labels]
    ids = torch.full((n, max(map(len, prompts))), tokenizer.pad_token_id, dtype=torch.long)
    for row, prompt in enumerate(prompts):  # right padded: every prompt keeps the positions it was trained at
        ids[row, : len(prompt)] = torch.tensor(prompt)
    logits = model(input_ids=ids, attention_mask=(ids != tokenizer.pad_token_id).long()).logits
    last = logits[torch.arange(n), torch.tensor([len(p) - 1 for p in prompts])]
    negative, positive = tokenizer.convert_tokens_to_ids(list(words))
    return ((last[:, positive] > last[:, negative]) == torch.tensor(labels)).float().mean().item()


def check_learnt(model: PreTrainedModel, tokenizer, what: str) -> dict[str, float]:
    """Each verdict format's accuracy; raises :class:`PretrainingFailedError` when one is below :data:`LEARNT`."""
    scores = {fmt: verdict_accuracy(model, tokenizer, fmt, words) for fmt, words in VERDICTS if words}
    failed = {fmt: score for fmt, score in scores.items() if score < LEARNT}
    if failed:
        raise PretrainingFailedError(
            f"{what} did not learn the polarity of a review (verdict accuracy {failed}, needs >= {LEARNT}); "
            f"it was not cached. Pretrain longer (model.pretrain_steps) or use the shipped default "
            f"(model=tiny-llama with its default seed and pretrain_steps)"
        )
    return scores
