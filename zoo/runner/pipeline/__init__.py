"""One run as a pipeline of named steps, each a small function with typed inputs and outputs.

plan the config -> load the data -> load the base model -> its loss on general text -> score
the untrained baselines on it -> prepare the learner (wrap the method, or freeze the base for a
baseline) -> train or fit it -> evaluate -> save what it learnt -> time it against the base
model -> the general text's loss again (forgetting) -> record.

No step knows a method, a baseline, a task kind or a formulation by name: they read the
registries' flags (zoo.method.MethodSpec, zoo.runner.baselines.BaselineSpec) and the task's kind
(zoo.task_kinds: its data, formulation, loss, metrics and record fields) from the
:class:`~zoo.runner.plan.Plan`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate.utils import set_seed
from omegaconf import DictConfig

from zoo.io.records import RunRecord
from zoo.runner.pipeline.base import load_base, measure_general_text, score_untrained
from zoo.runner.pipeline.learner import prepare_learner
from zoo.runner.pipeline.outputs import claim_outputs
from zoo.runner.pipeline.record import make_record
from zoo.runner.pipeline.steps import evaluate_learner, save_learnt, time_learner, train_learner
from zoo.runner.plan import plan_run
from zoo.runner.resume import run_identity


def run(cfg: DictConfig, out_dir: Path) -> RunRecord:
    """Execute the run ``cfg`` describes; write its ``metrics.json`` and its kind's per-example answers (``flips.jsonl``,
    ``generations.jsonl``) into ``out_dir``; return its record."""
    plan = plan_run(cfg)
    claim_outputs(plan, out_dir)
    set_seed(plan.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = plan.kind.load(plan.task)
    base = load_base(plan, out_dir)
    general = measure_general_text(plan, base)
    scores = score_untrained(plan, data, base)
    learner = prepare_learner(plan, data, base, scores)
    result = train_learner(plan, learner, data, base, out_dir)
    after = evaluate_learner(plan, learner, data, base)
    saved = save_learnt(plan, learner, data, base, out_dir)
    latency = time_learner(plan, learner, data, base, scores) if plan.latency else None
    forgetting = general.after(learner.model) if general is not None else None
    record = make_record(plan, data, base, scores, learner, result, after, saved, latency, forgetting, run_identity(cfg))
    if base.accelerator.is_main_process:
        plan.kind.write_outputs(
            out_dir, data, learner.before.evaluation if learner.before is not None else None, after.evaluation
        )
        record.write(out_dir / "metrics.json")
    return record
