"""The generation oracle of the virtual-token tests (peft_oracle.peft_greedy) is peft's own generate,
wherever peft's generate handles the installed transformers' cache name (peft 0.22 and later do)."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import torch
from conftest import make_model
from packaging.version import Version
from peft import PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig, get_peft_model
from peft_oracle import peft_greedy, quiet_peft

from zoo.models.cache_kwarg import CACHE_KWARG

CONFIGS = {
    "prompt_tuning": lambda: PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5),
    "p_tuning": lambda: PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=5, encoder_hidden_size=32),
    "prefix_tuning": lambda: PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5),
}


@pytest.mark.xfail(
    CACHE_KWARG == "cache" and Version(version("peft")) < Version("0.22"),
    strict=True,
    reason="peft (<= 0.21.2) looks the cache up as past_key_values, which transformers >= 5.24 passes as cache: "
    "its generate takes every step for the prefill (peft_oracle.py says what follows)",
)
@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_greedy_oracle_is_peft_generate(method, batch):
    torch.manual_seed(0)
    peft_model = get_peft_model(make_model("tiny-llama"), CONFIGS[method]()).eval()
    # peft numbers left-padded rows by the mask for prefix tuning only (it drops position ids otherwise)
    rows = batch if method == "prefix_tuning" else {k: v[1:] for k, v in batch.items()}
    with quiet_peft():
        generated = peft_model.generate(**rows, max_new_tokens=5, do_sample=False, pad_token_id=0)
    expected = peft_greedy(peft_model, **rows, max_new_tokens=5, pad_token_id=0, positions_from_mask=method == "prefix_tuning")
    assert torch.equal(generated, expected)
