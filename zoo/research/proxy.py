"""Proxy-tuning at decode time (Liu et al., 2024, "Tuning Language Models by Proxy", arXiv:2401.08565).

A large base model M is steered, token by token, by the change that tuning made to a small
model sharing its vocabulary, without touching M's weights::

    s̃(x_t | x_<t) = s_M(x_t | x_<t) + α · ( s_M+(x_t | x_<t) − s_M−(x_t | x_<t) )
    p̃(x_t | x_<t) = softmax(s̃)

M+ is the small model tuned (the paper's "expert": here any zoo method, loaded from its saved
adapter), M− the same small model untuned (the "anti-expert"); α = 1 is the paper's
proxy-tuning, other values strengthen or weaken the steer. s are *raw logits*, as in the paper's logit arithmetic (§2).
Using log-softmax instead would add one constant per position and model
(−logsumexp), which changes neither the softmax above, nor the argmax, nor a comparison of
label words at one position: classification and decoding are the same either way; only the
returned numbers differ. The three models must share one vocabulary, id for id.

The reported figure is the share of the fine-tuning gain proxy-tuning recovers,
``(score(proxy) − score(base)) / (score(truly tuned) − score(base))`` (the paper: 88% for
Llama2-70B steered by 7B models); see :func:`gain_recovered`.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers.modeling_outputs import CausalLMOutput

from zoo.io.adapter_io import load_adapter
from zoo.models.cache_kwarg import CACHE_KWARG
from zoo.task_kinds import TaskData, get_task_kind
from zoo.tasks.config import TaskConfig
from zoo.tasks.kind import Evaluation


class VocabularyMismatchError(ValueError):
    """The models or tokenizers of a proxy-tuned model do not share one vocabulary."""


def check_same_vocabulary(large_tokenizer, small_tokenizer) -> None:
    """Raise :class:`VocabularyMismatchError` naming where two tokenizers' vocabularies differ.

    Proxy-tuning adds logits id by id, so the same id must mean the same token in both.
    """
    large, small = _id_to_token(large_tokenizer), _id_to_token(small_tokenizer)
    if large == small:
        return
    where = next((i for i, (a, b) in enumerate(zip(large, small)) if a != b), None)
    if where is None:  # one vocabulary extends the other
        where = min(len(large), len(small))
        first = (
            f"token id {where} is {_token_at(large, where)} in the large tokenizer and {_token_at(small, where)} in the small one"
        )
    else:
        first = f"token id {where} is {large[where]!r} in the large tokenizer and {small[where]!r} in the small one"
    raise VocabularyMismatchError(
        f"the large and small tokenizers do not share a vocabulary: sizes {len(large)} and {len(small)}; first difference: {first}. "
        "Proxy-tuning adds logits token id by token id; use a small model with the large model's tokenizer"
    )


def _id_to_token(tokenizer) -> list[str | None]:
    vocab = tokenizer.get_vocab()  # token -> id, added tokens included
    table: list[str | None] = [None] * (max(vocab.values()) + 1 if vocab else 0)
    for token, i in vocab.items():
        table[i] = token
    return table


def _token_at(table: list[str | None], i: int) -> str:
    return repr(table[i]) if i < len(table) else "absent"


def _vocab_size(model: nn.Module) -> int:
    return int(model.config.vocab_size)


class ProxyTunedModel(nn.Module):
    """``large + alpha · (small_tuned − small_base)`` in logit space, with ``forward`` and ``generate``.

    Args:
        large: the large base model M (a transformers causal LM, or anything with its call conventions).
        small_tuned: the small tuned model M+ (e.g. a ``ZooModel`` from :func:`zoo.load_adapter`).
        small_base: the same small model untuned, M− (a separate module: wrapping tunes in place).
        alpha: strength of the steer; 1 is the paper's proxy-tuning, 0 gives back ``large``.
        large_tokenizer / small_tokenizer: when given, checked to map every id to the same token.

    Raises:
        VocabularyMismatchError: the models' vocabulary sizes, or the tokenizers, differ.
        ValueError: ``alpha`` is not a finite number.
    """

    def __init__(
        self,
        large: nn.Module,
        small_tuned: nn.Module,
        small_base: nn.Module,
        alpha: float = 1.0,
        large_tokenizer=None,
        small_tokenizer=None,
    ):
        super().__init__()
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not math.isfinite(alpha):
            raise ValueError(f"alpha must be a finite number (1.0 is the paper's proxy-tuning), got {alpha!r}")
        if small_tuned is small_base:
            raise ValueError(
                "small_tuned and small_base are the same module; wrapping tunes in place, so keep an untouched copy as small_base"
            )
        sizes = {"large": _vocab_size(large), "small tuned": _vocab_size(small_tuned), "small base": _vocab_size(small_base)}
        if len(set(sizes.values())) > 1:
            raise VocabularyMismatchError(
                f"the models' vocabulary sizes differ: {sizes}; proxy-tuning adds logits token id by token id, "
                "so all three models need one vocabulary"
            )
        if (large_tokenizer is None) != (small_tokenizer is None):
            raise ValueError("give both large_tokenizer and small_tokenizer, or neither")
        if large_tokenizer is not None:
            check_same_vocabulary(large_tokenizer, small_tokenizer)
        self.large, self.small_tuned, self.small_base = large, small_tuned, small_base
        self.alpha = float(alpha)

    @classmethod
    def from_adapter(
        cls,
        large: nn.Module,
        small_base: nn.Module,
        adapter: str | Path,
        alpha: float = 1.0,
        large_tokenizer=None,
        small_tokenizer=None,
    ) -> ProxyTunedModel:
        """The proxy whose expert is ``small_base`` with the zoo adapter saved in ``adapter``.

        The adapter is loaded onto a copy, so ``small_base`` stays the untuned anti-expert.
        """
        tuned = load_adapter(copy.deepcopy(small_base), adapter).eval()
        return cls(large, tuned, small_base, alpha, large_tokenizer, small_tokenizer)

    @property
    def models(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        return self.large, self.small_tuned, self.small_base

    def combine(self, large: Tensor, tuned: Tensor, base: Tensor) -> Tensor:
        """``large + alpha · (tuned − base)`` in float32 (the difference of two close logits loses bits in bf16)."""
        return large.float() + self.alpha * (tuned.float() - base.float())

    def forward(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None, **kwargs) -> CausalLMOutput:
        """Each model's forward on the same inputs, logits combined; other outputs are dropped.

        Keyword arguments (``logits_to_keep``, ``position_ids`` ...) go to all three models, so
        left-padded batches scored at the last position work as for a single model. A cache
        cannot be shared by three models: decoding with caches is :meth:`generate`'s job.

        Raises:
            ValueError: a cache (``cache`` or ``past_key_values``) or ``labels`` were passed.
        """
        for key in ("cache", "past_key_values", "labels"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    f"ProxyTunedModel.forward does not take {key}: use generate() to decode, and compute losses on the logits"
                )
        kwargs["use_cache"] = False
        logits = [m(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits for m in self.models]  # 3 × (B, T', V)
        return CausalLMOutput(logits=self.combine(*logits))

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        max_new_tokens: int = 20,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Decode from the combined logits; each model keeps its own key/value cache.

        Greedy by default; ``do_sample`` draws from ``softmax(s̃ / temperature)`` after top-k
        and nucleus (top-p) filtering. Positions are numbered by each model from the first
        column, padding included, exactly as in :meth:`forward` and zoo's classifier (rotary
        models do not see left padding this way; absolute-position ones see it shifted).

        Returns:
            ``(B, T + n)`` ids: the prompt and ``n ≤ max_new_tokens`` new tokens; rows that
            produced ``eos_token_id`` are filled with ``pad_token_id`` (default: the eos id).

        Raises:
            ValueError: a bad sampling setting, or a max_new_tokens below 1.
        """
        _check_sampling(max_new_tokens, temperature, top_k, top_p)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        pad = pad_token_id if pad_token_id is not None else eos_token_id
        ids, step, mask = input_ids, input_ids, attention_mask
        caches: list = [None, None, None]
        finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for _ in range(max_new_tokens):
            outs = [
                m(input_ids=step, attention_mask=mask, use_cache=True, logits_to_keep=1, **{CACHE_KWARG: cache})
                for m, cache in zip(self.models, caches)
            ]
            caches = [getattr(o, CACHE_KWARG) for o in outs]
            scores = self.combine(*(o.logits[:, -1] for o in outs))  # (B, V)
            token = next_token(scores, do_sample, temperature, top_k, top_p, generator)  # (B,)
            if eos_token_id is not None:
                token = torch.where(finished, torch.full_like(token, pad), token)
                finished |= token == eos_token_id
            ids = torch.cat([ids, token[:, None]], dim=1)
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            step = token[:, None]  # (B, 1): the caches hold everything before it
            if finished.all():
                break
        return ids


def _check_sampling(max_new_tokens: int, temperature: float, top_k: int, top_p: float) -> None:
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use do_sample=False for greedy), got {temperature!r}")
    if not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be a non-negative integer (0: no top-k filter), got {top_k!r}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1: no nucleus filter), got {top_p!r}")


def next_token(
    scores: Tensor,
    do_sample: bool,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``(B,)`` next ids from ``(B, V)`` scores: the argmax, or a draw after temperature, top-k and top-p."""
    if not do_sample:
        return scores.argmax(-1)
    scores = scores / temperature
    if 0 < top_k < scores.shape[-1]:
        kth = scores.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        scores = scores.masked_fill(scores < kth, -math.inf)
    if top_p < 1:
        sorted_scores, order = scores.sort(dim=-1, descending=True)
        cumulative = sorted_scores.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_scores.softmax(-1) >= top_p  # mass before a token already reaches top_p; the top token stays
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), -math.inf)  # back to vocabulary order
    return torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(-1)


def gain_recovered(proxy: float, base: float, tuned: float) -> float:
    """The share of the fine-tuning gain that proxy-tuning recovers (Liu et al. 2024, §3: "the gap closed").

    ``(proxy − base) / (tuned − base)`` for one score (accuracy, say) of the large model
    untuned (``base``), truly tuned (``tuned``) and proxy-tuned (``proxy``). 1 means the proxy
    matches true tuning, 0 that it adds nothing; it can fall below 0 or exceed 1.

    Returns NaN when ``tuned == base``: with no gain there is nothing to recover, and any
    number would mislead. A tuned score below the base's gives a negative denominator; the
    ratio then still reads "share of the (negative) change reproduced".

    Raises:
        ValueError: a score is not a finite number.
    """
    for name, value in (("proxy", proxy), ("base", base), ("tuned", tuned)):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} score must be a finite number, got {value!r}")
    if tuned == base:
        return math.nan
    return (proxy - base) / (tuned - base)


def score_task(
    model: nn.Module, tokenizer, task: TaskConfig, data: TaskData, batch_size: int = 8, with_demonstrations: bool = True
) -> Evaluation:
    """``model`` scored on a task's evaluation examples by the task's kind (zoo.task_kinds), as a run scores its learner.

    ``model`` is typically a :class:`ProxyTunedModel` (on a generation task its ``generate`` decodes greedily from the
    combined logits, its ``forward`` gives them for the teacher-forced log-likelihood), or the large model alone or truly
    tuned, for the two ends of :func:`gain_recovered`: e.g. ``gain_recovered(proxy.scores["rouge_l"], base.scores["rouge_l"],
    tuned.scores["rouge_l"])``. ``task`` is the run's :class:`~zoo.tasks.config.TaskConfig` and ``data`` its examples
    (``get_task_kind(task.kind).load(task)``); the prompts, demonstrations and metrics are a run's.
    """
    kind = get_task_kind(task.kind)
    kind.check_task(task)
    form = kind.formulate(
        task, tokenizer, "causal_lm", name=task.formulation, data=data, demonstrations=with_demonstrations, model=model
    )  # proxy tuning combines causal LMs' next-token logits
    return form.evaluate(model, data.eval, batch_size)
