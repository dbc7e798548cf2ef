"""The closed-form head against gradient descent, and the memory of its feature pass.

1. Speed: features Z (final hidden state at the answer position) and the base model's
   label-word log-probabilities L are computed once and cached. The closed form solves the
   ridge least squares on them; a linear head W (same d x k, same targets) is then trained by
   full-batch Adam on the same cached features until it reaches the closed form's training
   accuracy. Ratio = gradient-descent wall time / closed-form wall time (target: >= 20).
2. Memory: ``fit`` runs over N examples in a fresh process per N; the peak resident memory
   above the start of the pass should stay flat in N (it accumulates d x d and d x k only).

    python -m benchmarks.closed_form_speed                 # tiny-llama, default task
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

import zoo
from zoo.methods.closed_form_head import smoothed_log_targets, solve_ridge
from zoo.models.load import ModelConfig, load_model
from zoo.runtime.atomic import write_text
from zoo.runtime.memory import PeakMemory
from zoo.tasks.config import TaskConfig
from zoo.tasks.formulation import formulation_for
from zoo.tasks.synthetic import synthetic_sentiment


def task_batches(tokenizer, n: int, batch_size: int = 32, seed: int = 0):
    """The default task's prompts of ``n`` training examples, in order, and its label words' token ids."""
    data = synthetic_sentiment(n_train=n, n_eval=2, seed=seed)
    formulation = formulation_for(TaskConfig(), tokenizer, "causal_lm", name="prompt", train=data.train)
    return formulation.batches(data.train, batch_size, tokenizer.pad_token_id, seed=None), formulation.label_token_ids


@torch.no_grad()
def cached_features(model, batch_list, label_ids):
    zs, ls, ys = [], [], []
    for b in batch_list:
        out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], logits_to_keep=1, output_hidden_states=True)
        zs.append(out.hidden_states[-1][:, -1].double())
        ls.append(torch.log_softmax(out.logits[:, -1, label_ids].double(), -1))
        ys.append(b["labels"])
    return torch.cat(zs), torch.cat(ls), torch.cat(ys)


LEARNING_RATES = (1e-1, 3e-2, 1e-2, 3e-3)  # gradient descent gets its best learning rate


def speed(n: int, ridge: float, smoothing: float, max_steps: int) -> dict:
    model, tok = load_model(ModelConfig())
    batch_list, label_ids = task_batches(tok, n)
    z, logp, y = cached_features(model, batch_list, label_ids)
    target = smoothed_log_targets(y, len(label_ids), smoothing) - logp  # (N, k)

    start = time.perf_counter()
    w_closed, solver = solve_ridge(z.T @ z, z.T @ target, ridge)
    closed_s = time.perf_counter() - start
    closed_acc = float(((logp + z @ w_closed).argmax(-1) == y).double().mean())

    lam = ridge * float((z * z).sum()) / z.shape[1]
    runs = [_descend(z, logp, y, target, lam, closed_acc, lr, max_steps) for lr in LEARNING_RATES]
    gd_s, steps, gd_acc, best_lr = min(runs, key=lambda r: (r[2] < closed_acc, r[0]))
    return {
        "n": n,
        "d": z.shape[1],
        "closed_s": closed_s,
        "closed_acc": closed_acc,
        "solver": solver,
        "gd_s": gd_s,
        "gd_steps": steps,
        "gd_acc": gd_acc,
        "gd_lr": best_lr,
        "reached": gd_acc >= closed_acc,
    }


def _descend(z, logp, y, target, lam, goal, lr, max_steps) -> tuple[float, int, float, float]:
    """Full-batch Adam on the same objective until the training accuracy reaches ``goal``."""
    w = torch.zeros(z.shape[1], target.shape[1], dtype=z.dtype, requires_grad=True)
    opt = torch.optim.Adam([w], lr=lr)
    start, steps, acc = time.perf_counter(), 0, 0.0
    while steps < max_steps and acc < goal:
        opt.zero_grad()
        (((target - z @ w) ** 2).sum() + lam * (w**2).sum()).backward()
        opt.step()
        steps += 1
        with torch.no_grad():
            acc = float(((logp + z @ w).argmax(-1) == y).double().mean())
    return time.perf_counter() - start, steps, acc, lr


def memory_child(n: int) -> None:
    model, tok = load_model(ModelConfig())
    batch_list, label_ids = task_batches(tok, n)
    wrapped = zoo.wrap(model, "closed_form_head", label_token_ids=label_ids)
    with PeakMemory() as mem:
        wrapped.fit(iter(batch_list))
    print(json.dumps({"n": n, "peak_above_start_mb": mem.delta_bytes / 2**20}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="examples for the speed comparison")
    parser.add_argument("--memory-n", type=int, nargs="*", default=[512, 2048, 8192])
    parser.add_argument("--max-gd-steps", type=int, default=20000)
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "closed_form.md")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    s = speed(args.n, ridge=1e-3, smoothing=0.05, max_steps=args.max_gd_steps)
    mem = [
        json.loads(
            subprocess.run([sys.executable, __file__, "--memory-child", str(n)], check=True, capture_output=True, text=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        for n in args.memory_n
    ]
    lines = [
        "# Closed-form head: speed against gradient descent, memory against N",
        "",
        f"Command: `python -m benchmarks.closed_form_speed --n {args.n}` (tiny-llama, built-in task, cached features).",
        "",
        "Gradient descent: full-batch Adam, best of learning rates " + ", ".join(map(str, LEARNING_RATES)) + ".",
        "",
        "| N | d | closed form (s) | solver | train acc | GD to same acc (s) | GD lr | GD steps | GD acc | GD / closed |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {s['n']} | {s['d']} | {s['closed_s']:.4f} | {s['solver']} | {s['closed_acc']:.3f} | {s['gd_s']:.3f} | {s['gd_lr']} | {s['gd_steps']} "
        f"| {s['gd_acc']:.3f}{'' if s['reached'] else ' (not reached)'} | {s['gd_s'] / s['closed_s']:.0f}x |",
        "",
        "Feature pass of `fit` (fresh process per N; resident memory above the start of the pass):",
        "",
        "| N examples | peak above start (MB) |",
        "|---|---|",
        *[f"| {m['n']} | {m['peak_above_start_mb']:.1f} |" for m in mem],
    ]
    text = "\n".join(lines) + "\n"
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
