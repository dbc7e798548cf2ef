"""Scoring a model on a generation task: greedy decoding against the references, and teacher-forced log-likelihood.

Works with anything that has a transformers causal LM's ``forward`` (``logits``) and
``generate(input_ids, attention_mask, max_new_tokens, do_sample, eos_token_id, pad_token_id)``:
a base model, a wrapped one (zoo.wrap), a peft model, a :class:`~zoo.research.proxy.ProxyTunedModel`.
Decoding is batched over left-padded prompts and stops at the end-of-sequence token (or after
``max_new_tokens``); a batch decodes as its prompts would one at a time (tests/test_generation.py checks it).
"""

from __future__ import annotations

from collections import Counter

import torch
from accelerate import Accelerator

from zoo.runtime.distributed import dealt, gathered
from zoo.tasks.generation import GenerationFormulation, token_log_likelihoods
from zoo.tasks.generation_metrics import example_scores, generation_metrics
from zoo.tasks.kind import Evaluation
from zoo.tasks.pairs import Pair


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def generate_responses(model, batches: list[dict], formulation: GenerationFormulation) -> list[tuple[int, str]]:
    """``(example index, decoded response)`` of each prompt of ``batches``, greedy."""
    device, out = _device(model), []
    for batch in batches:
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        tokens = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=formulation.max_new_tokens,
            do_sample=False,
            eos_token_id=formulation.eos_token_id,
            pad_token_id=formulation.pad_token_id,
        )
        new = tokens[:, ids.shape[1] :].tolist()  # (B, n): what was written after each prompt
        out += [(i, formulation.decode(row)) for i, row in zip(batch["index"].tolist(), new)]
    return out


@torch.no_grad()
def response_log_likelihood(model, batches: list[dict]) -> tuple[float, int]:
    """The summed log-probability of the response tokens of ``batches`` (training batches) under teacher forcing, and their count."""
    device, total, count = _device(model), 0.0, 0
    for batch in batches:
        logp, mask = token_log_likelihoods(model, {k: v.to(device) for k, v in batch.items()})
        total, count = total + logp.sum().item(), count + int(mask.sum())
    return total, count


def evaluate_generation(
    model, pairs: list[Pair], formulation: GenerationFormulation, batch_size: int, accelerator: Accelerator | None = None
) -> Evaluation:
    """``model`` scored on ``pairs`` (zoo.tasks.generation_metrics): ROUGE-L F, exact match, chrF and the response
    log-likelihood per token, each example's ROUGE-L F, exact match and chrF, its responses in example order.

    With an ``accelerator`` of several processes each scores its share of the batches and the
    results are gathered, on every process; each example must be decoded exactly once.
    """
    prompts = formulation.prompt_batches(pairs, batch_size)
    teacher = formulation.training_batches(pairs, batch_size, seed=None)
    was_training = model.training
    model.eval()
    try:
        if accelerator is None:
            decoded, (total, count) = generate_responses(model, prompts, formulation), response_log_likelihood(model, teacher)
        else:
            decoded = gathered(generate_responses(model, dealt(prompts, accelerator), formulation), accelerator)
            sums = gathered([response_log_likelihood(model, dealt(teacher, accelerator))], accelerator)
            total, count = sum(s for s, _ in sums), sum(c for _, c in sums)
    finally:
        model.train(was_training)
    seen = Counter(i for i, _ in decoded)
    if sorted(seen) != list(range(len(pairs))) or max(seen.values()) > 1:
        raise RuntimeError(
            f"evaluation decoded {len(decoded)} responses for {len(pairs)} examples: duplicated "
            f"{sorted(i for i, c in seen.items() if c > 1)[:10]}, missing {sorted(set(range(len(pairs))) - set(seen))[:10]}"
        )
    responses = [text for _, text in sorted(decoded)]
    per_example = example_scores(responses, [p.response for p in pairs])
    metrics = generation_metrics(per_example, total, count)
    return Evaluation(
        {name: metrics[name] for name in (*per_example, "log_likelihood_per_token")},
        per_example,
        responses,
        {"response_tokens": metrics["response_tokens"], "n": metrics["n"]},
    )
