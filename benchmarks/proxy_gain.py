"""How much of the fine-tuning gain proxy-tuning recovers (Liu et al. 2024, arXiv:2401.08565).

A large model M and a small model sharing its vocabulary (a copy of M's first layers, with
the same embeddings and head) are both tuned with one zoo method through zoo's own loop. The
large base is then steered by the small pair, ``s_M + α·(s_M+ − s_M−)`` (:mod:`zoo.research.proxy`), and
scored on the task:

    gain recovered = (acc(proxy) − acc(M)) / (acc(M tuned) − acc(M))        (the paper: 0.88, 70B by 7B)

Hydra app over zoo's config groups plus the ``proxy`` group (which pair, how deep, which α)::

    python -m benchmarks.proxy_gain                                   # proxy=tiny-llama, LoRA, seeds 0 1 2
    python -m benchmarks.proxy_gain method=ia3 'seeds=[0]' out_dir=benchmarks/results/proxy_gain_ia3
    python -m benchmarks.proxy_gain proxy=smollm2-135m proxy.small_layers=8 trainer.max_steps=200

Writes ``proxy_gain.json``, ``proxy_gain.md`` and ``proxy_gain.png`` into ``out_dir`` (default:
Hydra's run folder).
"""

from __future__ import annotations

import copy
import math
import shlex
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import torch
from accelerate.utils import set_seed
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import MISSING, DictConfig, OmegaConf
from torch import nn

import zoo
from benchmarks.finetune import tune
from zoo.evaluation.classification import evaluate
from zoo.inject import replace_module
from zoo.method import MethodConfig, TaskContext
from zoo.models.arch import blocks, model_kind
from zoo.models.language import VOCABULARY
from zoo.models.load import ModelConfig, load_model
from zoo.models.tiny import TINY_KINDS, tiny_model
from zoo.models.tokenizer import word_tokenizer
from zoo.research.proxy import ProxyTunedModel, gain_recovered
from zoo.runner.config import store_configs
from zoo.runtime.atomic import write_json, write_text
from zoo.tasks.config import TaskConfig, build_task
from zoo.tasks.formulation import formulation_for
from zoo.training.loop import TrainerConfig, make_accelerator

ROLES = ["large base", "small base", "small tuned", "large tuned"]


@dataclass
class ProxySetup:
    """The ``proxy`` config group: which large model, how its small proxy is cut, which strengths."""

    large: ModelConfig = field(default_factory=ModelConfig)
    large_layers: int | None = None
    """Depth of a built-in tiny large model (zoo's tiny models have 2); must stay None for other models."""
    small_layers: int = 2
    """The small model is a copy of the large one's first ``small_layers`` blocks."""
    alphas: list[float] = field(default_factory=lambda: [1.0])
    """Strengths α of the steer to score; 1.0 is the paper's proxy-tuning."""


@dataclass
class ProxyGainConfig:
    defaults: list[Any] = field(
        default_factory=lambda: [
            "_self_",
            {"proxy": "tiny-llama"},
            {"method": "lora"},
            {"task": "synthetic_sentiment"},
            {"trainer": "default"},
        ]
    )
    proxy: ProxySetup = field(default_factory=ProxySetup)
    method: MethodConfig = MISSING
    task: TaskConfig = field(default_factory=TaskConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Training seeds (batch order, adapter init); the models' weights stay those of ``proxy.large``."""
    out_dir: str | None = None
    """Where the results go; None: Hydra's run folder."""


def large_model(setup: ProxySetup):
    """``(model, tokenizer)`` of the large model."""
    if setup.large.name in TINY_KINDS:
        tokenizer = word_tokenizer(VOCABULARY)
        return tiny_model(setup.large.name, len(tokenizer), seed=setup.large.seed, layers=setup.large_layers or 2), tokenizer
    if setup.large_layers is not None:
        raise ValueError(
            f"proxy.large_layers={setup.large_layers} sets the depth of a built-in tiny model; {setup.large.name!r} has its own"
        )
    return load_model(setup.large)


def truncated_copy(model: nn.Module, layers: int) -> nn.Module:
    """A copy of ``model`` that keeps its first ``layers`` transformer blocks (embeddings, final norm and head copied as they are).

    Raises:
        ValueError: ``layers`` is not between 1 and the model's depth − 1.
    """
    found = blocks(model)
    if not 1 <= layers < len(found):
        raise ValueError(
            f"small_layers={layers} must be between 1 and {len(found) - 1} (the large model has {len(found)} blocks)"
        )
    small = copy.deepcopy(model)
    container = found[0][0].rsplit(".", 1)[0]
    replace_module(small, container, nn.ModuleList(list(small.get_submodule(container))[:layers]))
    small.config.num_hidden_layers = layers  # caches and masks are sized from the config
    if getattr(small.config, "layer_types", None):
        small.config.layer_types = small.config.layer_types[:layers]
    return small.eval()


def seed_run(cfg: DictConfig, seed: int, large: nn.Module, small: nn.Module, tokenizer, out: Path) -> dict:
    """Every score of one training seed: the four models, then the proxy at each α."""
    method_cfg, task_cfg, trainer_cfg = (OmegaConf.to_object(cfg[k]) for k in ("method", "task", "trainer"))
    data = build_task(task_cfg)
    # proxy tuning steers next-token logits: the prompt formulation, whatever the task's own
    formulation = formulation_for(task_cfg, tokenizer, model_kind(large), name="prompt", train=data.train)
    train_batches = formulation.batches(data.train, trainer_cfg.batch_size, tokenizer.pad_token_id, seed=seed)
    eval_batches = formulation.batches(data.eval, trainer_cfg.batch_size, tokenizer.pad_token_id, seed=None)
    bound = method_cfg.bind(TaskContext(list(task_cfg.label_words), formulation.label_token_ids, tokenizer))
    accelerator = make_accelerator(trainer_cfg)

    def accuracy(model: nn.Module) -> float:
        return evaluate(model, eval_batches, formulation.scorer, [e.label for e in data.eval], data.label_names)[0]["accuracy"]

    def tuned(model: nn.Module, name: str) -> tuple[nn.Module, Path, float]:
        set_seed(seed)
        wrapped = zoo.wrap(copy.deepcopy(model), bound)
        start = time.perf_counter()
        tune(wrapped, formulation, train_batches, trainer_cfg, accelerator, desc=name)
        wrapped = wrapped.eval()
        return wrapped, zoo.save_adapter(wrapped, out / name / "adapter"), time.perf_counter() - start

    small_tuned, adapter, small_seconds = tuned(small, "small")
    large_tuned, _, large_seconds = tuned(large, "large")
    scores = {
        "large base": accuracy(large),
        "small base": accuracy(small),
        "small tuned": accuracy(small_tuned),
        "large tuned": accuracy(large_tuned),
    }
    proxy = {}
    for alpha in cfg.proxy.alphas:
        model = ProxyTunedModel.from_adapter(large, small, adapter, alpha, large_tokenizer=tokenizer, small_tokenizer=tokenizer)
        acc = accuracy(model)
        proxy[str(alpha)] = {"accuracy": acc, "gain_recovered": gain_recovered(acc, scores["large base"], scores["large tuned"])}
    return {"seed": seed, "scores": scores, "proxy": proxy, "train_seconds": {"small": small_seconds, "large": large_seconds}}


def _mean_std(values: list[float]) -> tuple[float, float, int]:
    """Mean and sample std over the finite values, and how many there were (NaN fractions are left out)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, 0
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0, len(finite)


def summarise(runs: list[dict], alphas: list[float]) -> dict:
    summary = {"scores": {r: _mean_std([run["scores"][r] for run in runs]) for r in ROLES}, "proxy": {}}
    # the reference a proxy must beat: the small tuned model used on its own in place of the large one
    summary["expert_alone"] = _mean_std(
        [gain_recovered(run["scores"]["small tuned"], run["scores"]["large base"], run["scores"]["large tuned"]) for run in runs]
    )
    for alpha in map(str, alphas):
        summary["proxy"][alpha] = {
            "accuracy": _mean_std([run["proxy"][alpha]["accuracy"] for run in runs]),
            "gain_recovered": _mean_std([run["proxy"][alpha]["gain_recovered"] for run in runs]),
        }
    return summary


def markdown(summary: dict, runs: list[dict], title: str, command: str) -> str:
    def cell(mean_std_n: tuple[float, float, int]) -> str:
        mean, std, n = mean_std_n
        return "n/a" if n == 0 else f"{mean:.3f} ± {std:.3f}" + (f" (of {n})" if n < len(runs) else "")

    lines = [
        f"# Proxy-tuning gain recovered: {title}",
        "",
        f"Command: `{command}`",
        "",
        f"Accuracy, mean ± std over {len(runs)} seed(s):",
        "",
        "| model | accuracy |",
        "|---|---|",
    ]
    lines += [f"| {role} | {cell(summary['scores'][role])} |" for role in ROLES]
    lines += ["", "| proxy α | accuracy | gain recovered |", "|---|---|---|"]
    lines += [f"| {alpha} | {cell(v['accuracy'])} | {cell(v['gain_recovered'])} |" for alpha, v in summary["proxy"].items()]
    lines.append(
        f"| small tuned alone (reference) | {cell(summary['scores']['small tuned'])} | {cell(summary['expert_alone'])} |"
    )
    lines += ["", "Per seed (large base → large tuned; proxy accuracy and gain recovered at each α):", ""]
    for run in runs:
        proxy = ", ".join(f"α={a}: {p['accuracy']:.3f} ({p['gain_recovered']:.2f})" for a, p in run["proxy"].items())
        lines.append(
            f"- seed {run['seed']}: {run['scores']['large base']:.3f} → {run['scores']['large tuned']:.3f}; "
            f"small {run['scores']['small base']:.3f} → {run['scores']['small tuned']:.3f}; {proxy}"
        )
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, curve) = plt.subplots(1, 2, figsize=(12, 4.5))
    alphas = list(summary["proxy"])
    shown = "1.0" if "1.0" in alphas else alphas[0]
    names = ROLES + [f"proxy α={shown}"]
    means = [summary["scores"][r][0] for r in ROLES] + [summary["proxy"][shown]["accuracy"][0]]
    stds = [summary["scores"][r][1] for r in ROLES] + [summary["proxy"][shown]["accuracy"][1]]
    bars.bar(names, means, yerr=stds, capsize=4, color=["tab:gray", "tab:gray", "tab:green", "tab:blue", "tab:orange"])
    bars.set(ylabel="accuracy", ylim=(0, 1), title="task accuracy (mean ± std over seeds)")
    bars.tick_params(axis="x", rotation=20)
    fractions = [summary["proxy"][a]["gain_recovered"] for a in alphas]
    curve.errorbar([float(a) for a in alphas], [f[0] for f in fractions], yerr=[f[1] for f in fractions], fmt="o-", capsize=4)
    curve.axhline(1.0, color="tab:blue", ls="--", lw=1, label="true tuning of the large model")
    curve.axhline(summary["expert_alone"][0], color="tab:green", ls="-.", lw=1, label="small tuned model alone")
    curve.axhline(0.88, color="tab:gray", ls=":", lw=1, label="paper: Llama2-70B steered by 7B")
    curve.set(xlabel="α", ylabel="fraction of the gain recovered", title="(acc(proxy) − acc(base)) / (acc(tuned) − acc(base))")
    curve.legend(fontsize=8)
    for ax in (bars, curve):
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def run(cfg: DictConfig, out: Path, command: str) -> dict:
    setup: ProxySetup = OmegaConf.to_object(cfg.proxy)
    torch.use_deterministic_algorithms(True, warn_only=True)
    large, tokenizer = large_model(setup)
    small = truncated_copy(large, setup.small_layers)
    method = zoo.registry.spec_for_config(OmegaConf.to_object(cfg.method)).name
    title = f"{setup.large.name} ({len(blocks(large))} layers) steered by its first {setup.small_layers}, {method}"
    runs = [seed_run(cfg, seed, large, small, tokenizer, out / f"seed{seed}") for seed in cfg.seeds]
    summary = summarise(runs, setup.alphas)
    record = {
        "title": title,
        "command": command,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "summary": summary,
        "runs": runs,
    }
    write_json(out / "proxy_gain.json", record)
    write_text(out / "proxy_gain.md", markdown(summary, runs, title, command))
    plot(summary, out / "proxy_gain.png", title)
    return record


store_configs()
ConfigStore.instance().store(name="proxy_gain_schema", node=ProxyGainConfig)


@hydra.main(version_base=None, config_path="pkg://zoo.conf", config_name="proxy_gain_schema")
def main(cfg: DictConfig) -> None:
    out = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir)
    run(cfg, out, shlex.join(["python", "-m", "benchmarks.proxy_gain", *HydraConfig.get().overrides.task]))
    print((out / "proxy_gain.md").read_text())
    print(f"wrote {out / 'proxy_gain.json'}, {out / 'proxy_gain.md'}, {out / 'proxy_gain.png'}")


if __name__ == "__main__":
    main()
