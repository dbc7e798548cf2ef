"""The broken copy of the method ``zoo new-method`` writes, for the tests that check the contract and the export catch it."""

from __future__ import annotations


def broken_copy(source: str) -> str:
    """The method module with a merge that gives a bias-free layer a bias, and no refuses_merge declared."""
    broken = source.replace(", refuses_merge=refuses_merge)", ")").replace(
        "        self._scale_weight(self.scale)\n        if self.base.bias is not None:",
        "        self._scale_weight(self.scale)\n"
        "        if self.base.bias is None and self.shift is not None:\n"
        "            self.base.bias = nn.Parameter(torch.zeros_like(self.shift))\n"
        "        if self.base.bias is not None:",
    )
    assert broken.count("nn.Parameter(torch.zeros_like(self.shift))") == 1 and "refuses_merge=" not in broken
    return broken
