"""What every method shares: its config base class, its spec, and the adapter protocol.

A method is a config dataclass (subclass of :class:`MethodConfig`) plus a wrap function
``fn(model, cfg) -> nn.Module``, registered with :func:`zoo.register`. The wrap function
receives a frozen model and injects modules implementing :class:`Adapter`; whatever those
modules list in ``adapter_params()`` is exactly what trains, what is saved, and what merges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from zoo.optimizer_recipe import OptimizerRecipe
from zoo.peft_format import PeftFormat
from zoo.runtime.typed_fields import check_fields

MODEL_KINDS = ("causal_lm", "encoder")
POSITIONAL_SCHEMES = ("rotary", "absolute", "relative", "alibi")
"""How a model tells positions apart (found by ``zoo.models.arch``): rotary embeddings, absolute
position embeddings, relative attention (DeBERTa, T5) or ALiBi biases."""


@dataclass
class MethodConfig:
    """Base of every method's config. Subclasses add typed, documented fields and
    validate them in ``__post_init__`` (call ``super().__post_init__()`` first: it checks every field against its
    annotation, so that an ``int`` field holds an int and a ``float`` field a finite number before ranges are compared)."""

    def __post_init__(self) -> None:
        check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def bind(self, task: TaskContext) -> MethodConfig:
        """This config with what it takes from the task filled in (label token ids, token ids of an init text).

        The runner calls it before wrapping, so a method never sees a tokenizer and a user never
        types token ids. Return a new config (``dataclasses.replace``) of the same class; the
        default takes nothing. A method that needs the label words (``needs_label_words``) must override it.
        """
        return self


@dataclass(frozen=True)
class TaskContext:
    """What a method config may take from the run's task (:meth:`MethodConfig.bind`)."""

    label_words: list[str]
    label_token_ids: list[int] | None
    """The label words' token ids as the prompt scores them (None: a head formulation, no label words scored)."""
    tokenizer: Any

    def token_ids(self, text: str) -> list[int]:
        """``text``'s token ids, without special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])


@runtime_checkable
class Adapter(Protocol):
    """A module that carries a method's own parameters.

    ``adapter_params()`` names the parameters (local to this module, as in
    ``named_parameters(recurse=False)`` or dotted into its children) that belong to the
    method. Mergeable adapters also implement ``merge()`` and ``unmerge()``.
    """

    def adapter_params(self) -> list[str]: ...


Reduce = Callable[[Tensor], Tensor]
"""A tensor -> its sum over the processes of a distributed run (zoo.runtime.distributed.summed)."""


@runtime_checkable
class GradientFree(Protocol):
    """A wrapped model that is solved in closed form instead of trained.

    ``fit`` takes batches with ``input_ids``, ``attention_mask`` (left padded: the answer
    position is the last) and ``labels`` (class indices), and returns summary numbers.
    Under several processes each sees its share of the batches, and ``reduce`` (a tensor ->
    its sum over the processes) must be applied to the statistics the solution is built from,
    so that every process solves the same system; with one process it is the identity or None.
    """

    def fit(self, batches: Iterable[dict[str, Tensor]], reduce: Reduce | None = None) -> dict[str, float]: ...


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its name, config class, wrap function, capability flags and peft counterpart.

    Flags drive the trainer and the contract tests; no code branches on ``name``.
    """

    name: str
    config: type[MethodConfig]
    wrap_fn: Callable[[nn.Module, MethodConfig], nn.Module]
    identity_at_init: bool = True
    mergeable: bool = False
    gradient_free: bool = False
    model_kinds: tuple[str, ...] = MODEL_KINDS
    positional_schemes: tuple[str, ...] = POSITIONAL_SCHEMES
    """Positional schemes the method can work with; a method that reproduces part of the model's
    attention (LLaMA-Adapter) declares those it can reproduce."""
    uses_cache: bool = False
    """The method enters through the model's key/value cache (prefix tuning): a model whose ``forward`` takes no
    cache (DeBERTa-v2, ModernBERT) is refused, saying so."""
    needs_label_words: bool = False
    task_kinds: tuple[str, ...] | None = None
    """The task kinds the method can learn (zoo.task_kinds); None: every kind, a plug-in's too. A method that only ever changes
    the label words' scores (the closed-form head) cannot make a model write, and declares ``("classification",)``; a run of
    it on another kind stops before loading anything."""
    quantized_base: bool = False
    """The method trains on a bitsandbytes 4-/8-bit base (``model.quantization``, QLoRA): its modules read only a layer's
    shape, never its packed weight, and keep their own parameters in float. Others are refused such a base."""
    positions: bool = False
    """The method acts at chosen positions of the prompt (LoReFT: its first and last tokens), not at every token: its wrap
    function attaches a :class:`zoo.positions.PositionTracker` that finds them from each call's attention mask, and
    tokens a forward call adds to a key/value cache (decoding) are left untouched; the contract tests check that."""
    refuses: Callable[[nn.Module], str | None] | None = None
    """For a limit the flags above cannot say (a layer type the method has no form for): ``refuses(model)``
    is why the method cannot wrap ``model`` (the message should read "method ... supports ..."), None where it can."""
    refuses_merge: Callable[[MethodConfig, nn.Module], str | None] | None = None
    """For a mergeable method that cannot merge some configs: ``refuses_merge(cfg, model)`` (``model`` as the wrap function
    returned it) is why this adapter cannot be folded into the base weights (a shift on a layer that has no bias would need a
    tensor the base model lacks, and a merged model must have exactly the base model's tensors), None where it can.
    :func:`zoo.merge` raises it; the contract tests check that it does, and that every merge it allows keeps the base
    model's tensors."""
    learning_rate: float = 1e-3
    """Learning rate that learns the built-in default task; used when the trainer's is unset."""
    optimizer: OptimizerRecipe | None = None
    """The optimiser the method trains with (:class:`zoo.OptimizerRecipe`: its parameter groups and their rates, the
    optimiser class); None: AdamW over all its parameters at the run's rate."""
    peft: PeftFormat | None = None
    """The method's peft counterpart (:class:`zoo.PeftFormat`): how its adapter exports to peft's format, imports
    from it, and which peft config has its size; None: the method has none."""
    source: str = "zoo"
    """Distribution that registered the method (``zoo`` for built-ins)."""
    source_version: str | None = None
    """That distribution's version (None for built-ins: zoo's own); :func:`zoo.save_adapter` records both."""
