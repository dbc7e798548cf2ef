"""The module a bridged method's wrap returns: a ``peft.PeftModel`` behind zoo's adapter protocol.

peft injects its layers into the (frozen) base model and marks exactly its adapter's tensors
trainable; this module lists those tensors as its ``adapter_params()``, so zoo trains, counts,
saves and loads them like any method's, and maps zoo's ``merge``/``unmerge`` onto peft's
``merge_adapter``/``unmerge_adapter``. The ``PeftModel`` stays whole (``peft_model``), so peft's
own ``save_pretrained`` works on a bridged model too.
"""

from __future__ import annotations

from torch import nn

from zoo.delegate import Delegating


class PeftBridged(Delegating):
    """A peft model standing in for the base: same ``forward`` and ``generate``; its adapter is zoo's."""

    delegate_to = "peft_model"

    def __init__(self, peft_model: nn.Module):
        super().__init__()
        self.peft_model = peft_model
        # peft has just marked its adapter's tensors, and only them, trainable (the base arrives frozen)
        self._adapter = [name for name, p in self.named_parameters() if p.requires_grad]

    def adapter_params(self) -> list[str]:
        return list(self._adapter)

    def merge(self) -> None:
        self.peft_model.merge_adapter()

    def unmerge(self) -> None:
        self.peft_model.unmerge_adapter()
