"""Step 0: every output the run will write into its folder is free to write (zoo.runtime.written), checked before any work."""

from __future__ import annotations

from pathlib import Path

from zoo.io.adapter_io import written_adapter
from zoo.io.records import is_record
from zoo.runner.plan import Plan
from zoo.runtime.written import MANIFEST, claim
from zoo.tasks.formulation import trains_head


def claim_outputs(plan: Plan, out_dir: Path) -> None:
    """Refuse to start a run whose outputs would replace what zoo did not write in ``out_dir`` (a user's ``flips.jsonl`` in
    ``hydra.run.dir=.``, a note in ``adapter/``).

    Raises:
        FileExistsError: naming what is in the way.
    """
    claim(out_dir / "metrics.json", "the run's record", ours=is_record)
    claim(out_dir / plan.kind.outputs, "the run's answers")
    if trains_head(plan.formulation):
        claim(out_dir / "head.safetensors", "the run's classification head")
    if plan.spec is not None:
        claim(out_dir / "adapter", "the run's adapter", ours=written_adapter)
        claim(out_dir / "checkpoint", "the run's checkpoint", ours=written_adapter)


def adapter_bytes(folder: Path) -> int:
    """The size of an adapter folder's files (its manifest left out: not part of the adapter)."""
    return sum(f.stat().st_size for f in folder.iterdir() if f.name != MANIFEST)
