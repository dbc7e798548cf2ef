"""The peft bridge: peft's tuners as zoo methods (``zoo method=peft_dora``), registered as a plugin.

This package uses only zoo's public plugin API: it is loaded through the ``zoo.methods`` entry
point (pyproject.toml) like a third-party plugin and calls :func:`zoo.register` once per
tuner of :data:`~zoo.peft_bridge.tuners.BRIDGED`. Each method's config is generated from the
peft config dataclass (:mod:`zoo.peft_bridge.config`: same fields, defaults and help text,
less those zoo owns); its wrap builds a ``peft.PeftModel`` with ``peft.get_peft_model`` and
returns it behind zoo's adapter protocol (:mod:`zoo.peft_bridge.model`), so zoo trains, saves,
loads and merges it like any method, and peft's own ``save_pretrained`` still works on it.

One method per tuner, not one ``peft`` method with a ``peft_type`` field: a zoo method is the
unit everything else is keyed by. A sweep row, a RESULTS.md line, an adapter folder's
``method`` entry, the documentation's family table and the contract tests each name one method, and
capability flags (identity at init, mergeable, Conv1D support) are per method; a single
``peft`` method would need every one of them to look inside its config, its config would be
the union of 33 unrelated field sets, and ``method=peft,peft`` sweeps over tuners would
all be one row. Per-tuner names also keep Hydra's ``method=peft_*`` globs and
``method.<field>=`` overrides typed per tuner.

Default targets come from the model's roles (:func:`zoo.models.arch.roles_of`), as zoo's own
LoRA does: every block's query and value projections (a fused q/k/v projection once), or
every block's norms for LN tuning, so a bridged tuner works on every tiny family rather than
on the model types of peft's table. The bridge covers causal LMs only (``model_kinds``).

Bridged (peft 0.21.2; a tuner missing from an older peft is not registered): peft_dora,
peft_rslora, peft_pissa, peft_olora (LoRA variants), peft_loha, peft_lokr, peft_oft, peft_boft,
peft_hra, peft_vera, peft_fourierft, peft_vblora, peft_shira, peft_ln_tuning, peft_miss,
peft_randlora, peft_road, peft_c3a, peft_waveft, peft_delora, peft_unilora, peft_tinylora,
peft_gralora, peft_hira, peft_pvera, peft_deft, peft_frod, peft_glora, peft_peanut, peft_psoft,
peft_supertuning, peft_beft, peft_osf.

Not bridged, with the reason (also :data:`~zoo.peft_bridge.tuners.UNBRIDGED`, which a test
checks covers every other peft type): LORA, IA3, PROMPT_TUNING, P_TUNING, PREFIX_TUNING,
ADAPTION_PROMPT are zoo's own methods; MULTITASK_PROMPT_TUNING and POLY need per-example task
ids; CPT needs its token-type mask from the task's examples and its own loss; CARTRIDGE is
trained by self-study distillation; ADALORA needs a per-step ``update_and_allocate`` trainer
hook and ADAMSS a transformers Trainer callback (and scikit-learn); XLORA needs trained LoRA
experts; TRAINABLE_TOKENS the token ids to train, which are task data; SHADOW fails in peft
0.21.2 on every tiny family; LILY decodes with a key/value cache to other logits than its own
full forward pass; PACA (new in peft 0.22.0) takes nn.Linear layers only and has not been
through zoo's contract yet.
"""

from __future__ import annotations

import peft
from packaging.version import Version
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
from torch import nn
from transformers.pytorch_utils import Conv1D

from zoo import register
from zoo.inject import LINEAR_TYPES, match_targets
from zoo.models.arch import block_names, query_value_targets, roles_of
from zoo.peft_bridge.config import PEFT_REFUSALS, BridgedConfig, generate_config
from zoo.peft_bridge.model import PeftBridged
from zoo.peft_bridge.tuners import BRIDGED, UNBRIDGED, Tuner

__all__ = ["BRIDGED", "UNBRIDGED", "BridgedConfig", "PeftBridged", "bridged_methods", "peft_model"]
_registered: list[str] = []


def default_targets(model: nn.Module, placement: str) -> list[str]:
    """Full names of the modules a tuner of ``placement`` targets by default in ``model``."""
    if placement == "norms":
        (norms,) = roles_of(model).require("norms")
        return [name for path in norms for name in block_names(model, path)]
    return query_value_targets(model)


def _conv1d_refusal(name: str):
    def refuses(model: nn.Module) -> str | None:
        fused = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, Conv1D)})
        if not fused:
            return None
        return (
            f"method {name!r} supports nn.Linear projections only, not the GPT-2-style Conv1D maps ({', '.join(fused)}) "
            f"of {type(model).__name__}: peft's implementation of it does not handle Conv1D"
        )

    return refuses


def _check_token_indices(cfg: BridgedConfig, model: nn.Module) -> None:
    """peft's ``trainable_token_indices`` (LoRA and kin) must be token ids of the model: peft takes ``[]``, ``-1`` or an id
    past the vocabulary and fails inside torch at the first forward."""
    value = getattr(cfg, "trainable_token_indices", None)
    if value is None:
        return
    vocab = model.get_input_embeddings().num_embeddings
    for ids in value.values() if isinstance(value, dict) else [value]:
        if not (
            isinstance(ids, list) and ids and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocab for i in ids)
        ):
            raise ValueError(
                f"trainable_token_indices must be a non-empty list of token ids in [0, {vocab}), or a dict of such "
                f"lists per embedding layer; got {value!r}"
            )


def _wrap_fn(tuner: Tuner, peft_config: type):
    def wrap(model: nn.Module, cfg: BridgedConfig) -> nn.Module:
        # zoo's matching (suffixes, 're:<regex>', an error listing what could be targeted), handed to peft as full names
        kinds = LINEAR_TYPES if tuner.placement == "query_value" else (nn.Module,)
        targets = (
            match_targets(model, cfg.target_modules, kinds) if cfg.target_modules else default_targets(model, tuner.placement)
        )
        _check_token_indices(cfg, model)
        config = peft_config(**tuner.preset, **cfg.peft_fields(), target_modules=list(targets), task_type="CAUSAL_LM")
        try:
            return PeftBridged(peft.get_peft_model(model, config))
        except PEFT_REFUSALS as err:
            raise ValueError(
                f"{tuner.name}: peft cannot build its adapter with {cfg.changed()}: {type(err).__name__}: {err}"
            ) from err

    return wrap


def _register(tuner: Tuner) -> None:
    peft_config = PEFT_TYPE_TO_CONFIG_MAPPING.get(tuner.peft_type)
    if peft_config is None:  # an older peft without this tuner: the method does not exist there
        return
    class_name = "".join(part.capitalize() for part in tuner.name.split("_")) + "Config"
    changed = ", ".join(f"{k}={v!r}" for k, v in tuner.defaults.items())
    doc = tuner.summary + (
        f"\n\nzoo's defaults differ from peft's: {changed} (peft's do not fit small projections)." if changed else ""
    )
    config = generate_config(class_name, peft_config, tuner.preset, doc, defaults=tuner.defaults, module=__name__)
    globals()[class_name] = config  # importable by name, as a config class should be (pickling, Hydra's error messages)
    conv1d = tuner.conv1d if isinstance(tuner.conv1d, bool) else Version(peft.__version__) >= Version(tuner.conv1d)
    capabilities = {"refuses": None if conv1d else _conv1d_refusal(tuner.name)}
    register(
        tuner.name,
        config=config,
        identity_at_init=tuner.identity_at_init,
        mergeable=tuner.mergeable,
        model_kinds=("causal_lm",),
        learning_rate=tuner.learning_rate,
        **capabilities,
    )(_wrap_fn(tuner, peft_config))
    _registered.append(tuner.name)


def bridged_methods() -> list[str]:
    """Names of the methods this bridge registered with the installed peft."""
    return list(_registered)


def peft_model(model: nn.Module) -> peft.PeftModel:
    """The ``peft.PeftModel`` inside a model wrapped with a bridged method (for ``save_pretrained`` and the like).

    Raises:
        TypeError: ``model`` is not a zoo model wrapped with a bridged method.
    """
    inner = getattr(model, "model", None)
    if not isinstance(inner, PeftBridged):
        raise TypeError(
            f"peft_model needs a model wrapped with a bridged method ({', '.join(_registered)}), "
            f"got {getattr(model, 'method', type(model).__name__)!r}"
        )
    return inner.peft_model


for _tuner in BRIDGED:
    _register(_tuner)
