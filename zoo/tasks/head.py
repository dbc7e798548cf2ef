"""Head-based classification: a new linear layer on the model's final hidden state (the classical baseline).

::

    text ──► model (+ method) ──► z (B, d): final hidden state ──► head: z·Wᵀ + b ──► (B, k) class scores

``z`` is read where the model has seen the whole text: the last real position of a causal
LM (batches left padded, so the last column; the hidden state its LM head would read), the
first token of an encoder (batches right padded; ``[CLS]`` where the tokenizer adds one).
The head is the task's, not the method's: it trains beside the method's parameters (or
alone, for a linear probe), and ``zoo.save_adapter`` never sees it. The input is the text
alone, without template, label words or demonstrations.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file
from torch import Tensor, nn

from zoo.runtime.written import write_file


class ClassificationHead(nn.Module):
    """``k`` class scores from the final hidden state; zero at init, so an untrained head predicts no class over another."""

    def __init__(self, hidden_size: int, num_classes: int, encoder: bool):
        super().__init__()
        self.encoder = encoder
        self.linear = nn.Linear(hidden_size, num_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def features(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """(B, d) final hidden state at the position that summarises each text."""
        if self.encoder:
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            return out.last_hidden_state[:, 0]
        out = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True, logits_to_keep=1
        )
        return out.hidden_states[-1][:, -1]

    def forward(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        z = self.features(model, batch)
        return self.linear(z.to(self.linear.weight.dtype))


def encode_text(tokenizer, text: str, max_length: int, encoder: bool) -> list[int]:
    """Token ids of ``text`` alone, cut to ``max_length``, with the tokenizer's own special tokens.

    An encoder reads its first token, so one is put first when the tokenizer adds none
    (``[CLS]``, else ``<s>``/BOS): the summary position never holds a word of the text.
    """
    ids = tokenizer(text, add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    if encoder and start is not None and ids[:1] != [start]:
        ids = [start] + ids[: max_length - 1]
    return ids


def save_head(head: ClassificationHead, path: Path, label_names: list[str]) -> int:
    """Write the head's weights (safetensors, class names in the metadata) atomically; return the file's size.

    Raises:
        FileExistsError: a file zoo did not write is at ``path`` (zoo.runtime.written).
    """
    tensors = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    metadata = {"label_names": json.dumps(label_names), "encoder": str(head.encoder)}
    write_file(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata), "a classification head")
    return path.stat().st_size
