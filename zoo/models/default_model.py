"""The pretrained tiny models: the default one ships with zoo, any other is pretrained once and cached.

``tiny-llama`` with its default seed and ``pretrain_steps`` is the model of ``zoo`` with no
arguments. Its weights (330 KB) ship inside the package, so the default run needs neither a
download nor minutes of pretraining, and every machine and library version starts from the
same bits. Any other (kind, seed, steps) is pretrained on first use by
:func:`zoo.models.pretrain.pretrain`, checked to have learnt (:func:`check_learnt`: a model
that did not is refused, never cached), and cached in ``cache_dir`` under a file lock, so
two first runs build it once.

The shipped file is regenerated, bit for bit with the same torch and transformers versions (its
``.json`` names them: the random initialisation is transformers') on the same kind of CPU, by::

    python -m zoo.models.default_model --check     # rebuild, compare with the shipped bits
    python -m zoo.models.default_model --write     # rebuild and replace them (after a recipe change)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, PreTrainedModel

from zoo.models.pretrain import CORPUS_VERSION, check_learnt, pretrain
from zoo.models.tiny import tiny_model
from zoo.runtime.atomic import write_json, writing_dir
from zoo.runtime.cache_lock import building
from zoo.runtime.cache_manifest import manifest_problem, write_manifest

log = logging.getLogger(__name__)
WEIGHTS = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class Recipe:
    kind: str
    vocab_size: int
    seed: int
    steps: int
    corpus_version: int = CORPUS_VERSION

    @property
    def key(self) -> str:
        return hashlib.sha256(
            f"{self.kind}|{self.vocab_size}|{self.seed}|{self.steps}|{self.corpus_version}".encode()
        ).hexdigest()[:12]


DEFAULT_STEPS = 1500
"""``model.pretrain_steps`` of the shipped model; the verdicts are learnt by step 1000 (zoo.models.pretrain)."""
SHIPPED = {"tiny-llama": WEIGHTS / "tiny-llama.safetensors"}
"""Kinds whose default recipe ships; each file has a ``.json`` beside it: the recipe, its sha256, the check's scores."""


def pretrained_tiny(kind: str, tokenizer, seed: int, steps: int, cache_dir: str | Path, progress: bool = True) -> PreTrainedModel:
    """The tiny causal LM ``kind`` after ``steps`` of pretraining: shipped, cached, or built now (and cached).

    Raises:
        PretrainingFailedError: a model built now did not learn (it is not cached).
    """
    recipe = Recipe(kind, len(tokenizer), seed, steps)
    shipped = load_shipped(recipe)
    if shipped is not None:
        return shipped
    folder = Path(cache_dir).expanduser() / f"{kind}-lm-{recipe.key}"
    if manifest_problem(folder) is not None:
        with building(folder):
            reason = manifest_problem(folder)
            if reason is not None:  # else another process built it while this one waited
                if folder.exists():
                    log.warning("pretraining %s again into %s: %s", kind, folder, reason)
                _build(recipe, tokenizer, folder, progress)
    return AutoModelForCausalLM.from_pretrained(folder).eval()


def _build(recipe: Recipe, tokenizer, folder: Path, progress: bool) -> None:
    log.info("pretraining %s for %d steps on the synthetic corpus (once; cached in %s)", recipe.kind, recipe.steps, folder)
    model = pretrain(recipe.kind, tokenizer, recipe.seed, recipe.steps, progress)
    check_learnt(model, tokenizer, f"{recipe.kind} pretrained for {recipe.steps} steps with seed {recipe.seed}")
    with writing_dir(folder) as staging:
        model.save_pretrained(staging)
        write_manifest(staging)


def load_shipped(recipe: Recipe) -> PreTrainedModel | None:
    """The shipped model of ``recipe``, or None when no shipped file was made by it.

    Raises:
        ValueError: the shipped file's bytes differ from its recorded checksum (a damaged install).
    """
    path = SHIPPED.get(recipe.kind)
    if path is None or not path.is_file():
        return None
    meta = json.loads(path.with_suffix(".json").read_text())
    if meta["recipe"] != recipe.__dict__:
        return None
    if _sha256(path) != meta["sha256"]:
        raise ValueError(f"{path} does not match its checksum in {path.with_suffix('.json').name}: reinstall zoo")
    model = tiny_model(recipe.kind, vocab_size=recipe.vocab_size, seed=recipe.seed)
    model.load_state_dict(load_file(path))
    return model.eval()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rebuild(kind: str, write: bool) -> int:
    from zoo.models.language import VOCABULARY
    from zoo.models.tokenizer import word_tokenizer

    tokenizer = word_tokenizer(VOCABULARY)
    recipe = Recipe(kind, len(tokenizer), seed=0, steps=DEFAULT_STEPS)
    model = pretrain(kind, tokenizer, recipe.seed, recipe.steps, progress=sys.stderr.isatty())
    scores = check_learnt(model, tokenizer, f"{kind} (shipped recipe)")
    path = SHIPPED[kind]
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / path.name
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(fresh))
        digest = _sha256(fresh)
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh.replace(path)
            write_json(
                path.with_suffix(".json"),
                {
                    "recipe": recipe.__dict__,
                    "sha256": digest,
                    "verdict_accuracy": scores,
                    "torch": torch.__version__,
                    "transformers": transformers.__version__,
                },
            )
            print(f"wrote {path} (sha256 {digest}); verdict accuracy {scores}")
            return 0
        shipped = json.loads(path.with_suffix(".json").read_text())
        if digest == shipped["sha256"]:
            print(f"{path.name}: rebuilt bit for bit (sha256 {digest}); verdict accuracy {scores}")
            return 0
        old = load_file(path)
        worst = max((model.state_dict()[k] - v).abs().max().item() for k, v in old.items())
        print(
            f"{path.name}: rebuilt weights differ (sha256 {digest}, shipped {shipped['sha256']}, largest difference {worst:.3g}; "
            f"shipped with torch {shipped['torch']} and transformers {shipped['transformers']}, this is {torch.__version__} and "
            f"{transformers.__version__}: their random initialisation or kernels may differ); the rebuilt model still learnt: {scores}"
        )
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild the shipped pretrained tiny model and compare or replace it.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="rebuild and compare with the shipped bits (exit 1 if they differ)")
    action.add_argument("--write", action="store_true", help="rebuild and replace the shipped file and its .json")
    parser.add_argument("--kind", default="tiny-llama", choices=sorted(SHIPPED))
    args = parser.parse_args(argv)
    return _rebuild(args.kind, write=args.write)


if __name__ == "__main__":
    raise SystemExit(main())
