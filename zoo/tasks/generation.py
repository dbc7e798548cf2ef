"""A generation task's formulation: prompts, responses, batches, and the loss on the response tokens only.

The prompt is the template up to ``{answer}`` with the pair's text (after demonstrations,
and in chat mode as the user turn, the response starting the assistant turn, exactly as a
classification prompt is built: zoo.tasks.prompt); the response is what follows, then the
end-of-sequence token, so that a model learns where to stop::

    training (right padded):   prompt tokens ...   response tokens ... </s>   <pad> <pad>
    labels:                    -100 ... -100       response tokens ... </s>   -100  -100
    evaluation (left padded):  <pad> <pad> prompt tokens ▌                    greedy decoding continues at ▌

Only the prompt's texts are cut, to ``max_length - max_new_tokens`` tokens for the whole prompt
(demonstrations' texts first, as in zoo.tasks.prompt); the response is never cut. Training batches
are right padded, so that every sequence starts at position 0 as a decoded prompt does
(transformers numbers a left-padded prompt's positions from its first real token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from zoo.tasks.generation_tasks import sample
from zoo.tasks.pairs import Pair
from zoo.tasks.prompt import _SLOT, PromptEncoder, PromptMarkup, check_template, length_grouped

if TYPE_CHECKING:
    from zoo.tasks.config import TaskConfig

IGNORE = -100
"""The label of a position that gets no loss (the prompt, padding): torch's cross-entropy ``ignore_index``."""


@dataclass(frozen=True)
class GenerationPrompt(PromptMarkup):
    """The prompt of a generation task: template and demonstrations with their responses, laid out by its markup."""

    template: str
    demonstrations: tuple[Pair, ...] = ()

    def __post_init__(self) -> None:
        check_template(self.template, "'review : {text} . answer : {answer}'")

    def _prompt(self, text: str) -> str:
        return self.template.split("{answer}", 1)[0].replace("{text}", text).rstrip(" ")

    def response_form(self, response: str) -> str:
        """``response`` as it follows the prompt: with the space the template puts before ``{answer}`` (plain mode)."""
        spaced = not self.chat_template and self.template.split("{answer}", 1)[0].endswith(" ")
        return " " + response if spaced else response

    def render(self, tokenizer) -> str:
        """The whole prompt as text, slot ``i`` marking demonstration i's text and slot ``m`` the query's (zoo.tasks.prompt)."""
        m = len(self.demonstrations)
        if not self.chat_template:
            demos = [
                self.template.replace("{text}", _SLOT.format(i)).replace("{answer}", d.response)
                for i, d in enumerate(self.demonstrations)
            ]
            return "".join(d + self.separator for d in demos) + self._prompt(_SLOT.format(m))
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(
                "task.chat_template=true, but this model's tokenizer has no chat template; set task.chat_template=false"
            )
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt is not None else []
        for i, d in enumerate(self.demonstrations):
            messages += [
                {"role": "user", "content": self._prompt(_SLOT.format(i)).strip()},
                {"role": "assistant", "content": d.response},
            ]
        messages.append({"role": "user", "content": self._prompt(_SLOT.format(m)).strip()})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


class GenerationFormulation:
    """A :class:`GenerationPrompt` compiled for one tokenizer: pairs -> token ids and batches.

    Args:
        prompt_tokens: the longest prompt in tokens (``max_length - max_new_tokens``); texts are cut to fit.
        max_new_tokens: the most tokens a decoding writes.
    """

    def __init__(self, prompt: GenerationPrompt, tokenizer, prompt_tokens: int, max_new_tokens: int):
        if tokenizer.eos_token_id is None:
            raise ValueError(
                "a generation task needs the tokenizer's end-of-sequence token (it ends every response); this one has none"
            )
        self.prompt, self.tokenizer, self.max_new_tokens = prompt, tokenizer, max_new_tokens
        self.encode_prompt = PromptEncoder(prompt, tokenizer, prompt_tokens)
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def encode_response(self, response: str) -> list[int]:
        """The response's token ids and the end-of-sequence token: what trains and what teacher forcing scores."""
        return self.tokenizer(self.prompt.response_form(response), add_special_tokens=False)["input_ids"] + [self.eos_token_id]

    def training_batches(self, pairs: list[Pair], batch_size: int, seed: int | None) -> list[dict[str, torch.Tensor]]:
        """Right-padded ``input_ids``/``attention_mask`` of prompt and response, ``labels`` the response tokens (else -100), ``index``."""
        prompts = [self.encode_prompt(p.text) for p in pairs]
        responses = [self.encode_response(p.response) for p in pairs]
        out = []
        for chunk in length_grouped([len(a) + len(b) for a, b in zip(prompts, responses)], batch_size, seed):
            width = max(len(prompts[i]) + len(responses[i]) for i in chunk)
            ids = torch.full((len(chunk), width), self.pad_token_id, dtype=torch.long)
            labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                p, r = prompts[i], responses[i]
                ids[row, : len(p) + len(r)] = torch.tensor(p + r)
                labels[row, len(p) : len(p) + len(r)] = torch.tensor(r)
                mask[row, : len(p) + len(r)] = 1
            out.append({"input_ids": ids, "attention_mask": mask, "labels": labels, "index": torch.tensor(chunk)})
        return out

    def prompt_batches(self, pairs: list[Pair], batch_size: int) -> list[dict[str, torch.Tensor]]:
        """Left-padded prompts (``input_ids``, ``attention_mask``, ``index``) for greedy decoding, grouped by length."""
        prompts = [self.encode_prompt(p.text) for p in pairs]
        out = []
        for chunk in length_grouped([len(p) for p in prompts], batch_size, None):
            width = max(len(prompts[i]) for i in chunk)
            ids = torch.full((len(chunk), width), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                mask[row, width - len(prompts[i]) :] = 1
            out.append({"input_ids": ids, "attention_mask": mask, "index": torch.tensor(chunk)})
        return out

    def decode(self, new_tokens: list[int]) -> str:
        """The text of decoded tokens up to the first end-of-sequence token, special tokens dropped."""
        if self.eos_token_id in new_tokens:
            new_tokens = new_tokens[: new_tokens.index(self.eos_token_id)]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


def generation_formulation(
    task: TaskConfig, tokenizer, train: list[Pair], with_demonstrations: bool = True
) -> GenerationFormulation:
    """The one way a run (zoo.task_kinds.generation), proxy tuning (zoo.research.proxy.score_task) and the tests turn a generation task into prompts and batches.

    ``with_demonstrations``: show ``task.demonstrations`` training pairs (drawn with the data seed) before each query.
    """
    shown = (
        tuple(sample(train, task.demonstrations, "demonstrations", task.seed))
        if with_demonstrations and task.demonstrations
        else ()
    )
    prompt = GenerationPrompt(
        task.template,
        shown,
        chat_template=task.chat_template,
        system_prompt=task.system_prompt,
        separator=task.demonstration_separator,
    )
    return GenerationFormulation(prompt, tokenizer, task.max_length - task.max_new_tokens, task.max_new_tokens)


def token_log_likelihoods(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p of each labelled token, its mask)``, both (B, T-1): position t predicts token t+1 (teacher forcing)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]  # (B, T-1, V)
    targets = batch["labels"][:, 1:]  # (B, T-1)
    mask = targets != IGNORE
    logp = -F.cross_entropy(logits.float().transpose(1, 2), targets.masked_fill(~mask, 0), reduction="none")  # (B, T-1)
    return logp * mask, mask


def response_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The mean cross-entropy over the batch's response tokens (the prompt and padding get none)."""
    logp, mask = token_log_likelihoods(model, batch)
    return -logp.sum() / mask.sum().clamp(min=1)
