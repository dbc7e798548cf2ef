"""LoRA through zoo against the same LoRA written the usual way (transformers Trainer + peft).

Same base model, data, LoRA (r, alpha, targets), learning rate, schedule, steps and batch size;
both evaluated by the same label-word scorer on the same evaluation set. The usual way pads
each batch to its longest member (right padding, examples in random order) and trains the
causal-LM loss over the whole vocabulary at every position with labels masked to the answer
token. zoo groups examples by length, pads on the left, and evaluates the LM head at the
answer position over the label words only. Both runs of each seed happen in this one job, zoo
first on even seeds and the usual way first on odd ones, so the machine's load and warm-up
affect both alike.

    python -m benchmarks.zoo_vs_trainer                                   # tiny model, default task
    python -m benchmarks.zoo_vs_trainer model=smollm2-135m task=movie_sentiment trainer.max_steps=60 trainer.batch_size=8
"""

from __future__ import annotations

import math
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import peft
import torch
import transformers
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from zoo.evaluation.classification import evaluate
from zoo.models.arch import model_kind
from zoo.models.load import load_model
from zoo.runner.config import store_configs
from zoo.runner.run import run
from zoo.runtime.atomic import write_text
from zoo.tasks.config import build_task
from zoo.tasks.formulation import formulation_for


def usual_way(cfg, seed: int) -> dict:
    """transformers Trainer + peft LoRA on the same data; returns train seconds and accuracy."""
    task, trainer_cfg, lora = (OmegaConf.to_object(cfg[k]) for k in ("task", "trainer", "method"))
    data = build_task(task)
    model, tokenizer = load_model(OmegaConf.to_object(cfg.model))
    # the very prompts zoo trains on (template, chat markup, system turn, demonstrations); only the batching is the usual way's
    formulation = formulation_for(task, tokenizer, model_kind(model), name="prompt", train=data.train)
    train_set = []
    for example in data.train:
        prompt, answer = formulation.encode(example.text), formulation.label_token_ids[example.label]
        train_set.append({"input_ids": prompt + [answer], "labels": [-100] * len(prompt) + [answer]})
    targets = lora.target_modules or ["q_proj", "v_proj"]
    transformers.set_seed(seed)  # peft draws LoRA's A here: the same init whichever run came first
    model = peft.get_peft_model(
        model,
        peft.LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets, task_type="CAUSAL_LM"
        ),
    )
    tokenizer.padding_side = "right"
    lr = trainer_cfg.learning_rate or 5e-3
    with tempfile.TemporaryDirectory() as tmp:
        args = transformers.TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=trainer_cfg.batch_size,
            max_steps=trainer_cfg.max_steps,
            learning_rate=lr,
            lr_scheduler_type="linear",
            warmup_steps=math.ceil(trainer_cfg.warmup_ratio * trainer_cfg.max_steps),
            weight_decay=trainer_cfg.weight_decay,
            max_grad_norm=trainer_cfg.max_grad_norm,
            save_strategy="no",
            report_to=[],
            logging_steps=10**9,
            seed=seed,
            use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        collator = transformers.DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
        trainer = transformers.Trainer(model=model, args=args, train_dataset=train_set, data_collator=collator)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    eval_batches = formulation.batches(data.eval, trainer_cfg.batch_size, tokenizer.pad_token_id, seed=None)
    metrics, _ = evaluate(
        model.to(next(model.parameters()).device).eval(),
        eval_batches,
        formulation.scorer,
        [e.label for e in data.eval],
        data.label_names,
    )
    return {"seconds": seconds, "accuracy": metrics["accuracy"]}


def main(overrides: list[str]) -> int:
    store_configs()
    seeds = [0, 1, 2]
    rows = []
    for seed in seeds:
        with initialize_config_module(config_module="zoo.conf", version_base=None):
            cfg = compose(
                "config",
                overrides=[
                    "method=lora",
                    "trainer.progress=false",
                    "trainer.checkpoint_every=0",
                    "save_adapter=false",
                    f"seed={seed}",
                    *overrides,
                ],
            )
        zoo_first = seed % 2 == 0  # alternate which runs first, so neither always meets a colder or busier machine
        if not zoo_first:
            theirs = usual_way(cfg, seed)
        with tempfile.TemporaryDirectory() as tmp:
            ours = run(cfg, Path(tmp))
        if zoo_first:
            theirs = usual_way(cfg, seed)
        rows.append(
            {
                "seed": seed,
                "first": "zoo" if zoo_first else "usual",
                "zoo_s": ours.train_seconds,
                "zoo_acc": ours.scores["accuracy"],
                "usual_s": theirs["seconds"],
                "usual_acc": theirs["accuracy"],
            }
        )
        print(rows[-1], file=sys.stderr, flush=True)
    ratio = statistics.median(r["zoo_s"] / r["usual_s"] for r in rows)
    lines = [
        "# LoRA: zoo against transformers Trainer + peft",
        "",
        f"Command: `{shlex.join(['python', '-m', 'benchmarks.zoo_vs_trainer', *overrides])}`; torch {torch.__version__}, "
        f"transformers {transformers.__version__}, peft {peft.__version__}, {torch.get_num_threads()} threads.",
        "",
        "| seed | ran first | zoo train s | zoo accuracy | Trainer+peft train s | Trainer+peft accuracy | time zoo/usual |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {r['seed']} | {r['first']} | {r['zoo_s']:.1f} | {r['zoo_acc']:.3f} | {r['usual_s']:.1f} | {r['usual_acc']:.3f} | "
            f"{r['zoo_s'] / r['usual_s']:.2f} |"
            for r in rows
        ],
        "",
        f"Median time ratio zoo/usual: **{ratio:.2f}** (target <= 0.67). Mean accuracy zoo "
        f"{statistics.fmean(r['zoo_acc'] for r in rows):.3f} ± {statistics.stdev(r['zoo_acc'] for r in rows):.3f}, usual "
        f"{statistics.fmean(r['usual_acc'] for r in rows):.3f} ± {statistics.stdev(r['usual_acc'] for r in rows):.3f}.",
    ]
    text = "\n".join(lines) + "\n"
    name = "_".join(["zoo_vs_trainer", *(o.split("=", 1)[1] for o in overrides if o.startswith(("model=", "task=")))])
    write_text(Path(__file__).parent / "results" / f"{name}.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
