"""``model.quantization``: QLoRA's bitsandbytes recipe for the methods that declare ``quantized_base``, clear errors elsewhere.

Everywhere: the errors (no CUDA, no bitsandbytes, a method that does not declare it, a tiny model),
and lora, ia3 and adapter on a stand-in quantized layer (int8 weights, as LLM.int8 stores them).
Where bitsandbytes is installed (``pip install -e .[gpu]``; it runs on the CPU too): the same
methods on bitsandbytes' own 4- and 8-bit layers, and a whole run on a 4-bit base, with zoo's
CUDA-only rule lifted for the test (``benchmarks/gpu_check.sh`` runs these on a GPU).
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from torch import nn
from transformers.pytorch_utils import Conv1D

import zoo
import zoo.models.quantization as quantization
from zoo.inject import LINEAR_TYPES, linear_shape, replace_module
from zoo.models.language import VOCABULARY
from zoo.models.load import ModelConfig, load_model
from zoo.models.quantization import check_quantized_base, quantization_config
from zoo.models.tiny import tiny_model
from zoo.models.tokenizer import word_tokenizer
from zoo.runner.config import store_configs
from zoo.runner.run import run
from zoo.testing.helpers import output, perturb, wrap_for_test
from zoo.testing.models import VOCAB_SIZE, make_model, tiny_batch

DECLARING = ["adapter", "ia3", "lora", "lora_plus"]  # LoRA+ is LoRA's modules: QLoRA with LoRA+'s rates
OTHERS = [m for m in zoo.list_methods() if zoo.get_method(m).source == "zoo" and m not in DECLARING]
HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


class Int8Linear(nn.Linear):
    """A stand-in for a quantized layer: int8 weight rows and a float scale per row, dequantized at each call."""

    def __init__(self, base: nn.Module):
        d_in, d_out = linear_shape(base)
        super().__init__(d_in, d_out, bias=base.bias is not None)
        weight = base.weight.detach().T if isinstance(base, Conv1D) else base.weight.detach()  # (d_out, d_in)
        scale = weight.abs().amax(1, keepdim=True).clamp_min(1e-8) / 127
        self.weight = nn.Parameter(torch.round(weight / scale).to(torch.int8), requires_grad=False)
        self.register_buffer("scale", scale)
        self.bias = base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.to(x.dtype) * self.scale.to(x.dtype), self.bias)


def _int8(kind: str) -> nn.Module:
    """A tiny model whose blocks' linear maps are :class:`Int8Linear` (the output head stays, as transformers keeps it)."""
    model = make_model(kind)
    head = model.get_output_embeddings()
    for name, module in list(model.named_modules()):
        if isinstance(module, LINEAR_TYPES) and module is not head:
            replace_module(model, name, Int8Linear(module))
    return model


def _step_changes_only_the_adapter(model: zoo.ZooModel, batch: dict) -> None:
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    out = output(model, batch).float()
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(0)).to(out.device)).sum().backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    adapter = {"model." + n for n in model.adapter_state_dict()}
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == adapter, (
        f"changed outside the adapter: {sorted(changed - adapter)[:3]}; unchanged: {sorted(adapter - changed)[:3]}"
    )


def _wrapped_and_trained(method: str, base, batch, atol: float = 1e-6):
    """``base`` wrapped with ``method``: float32 adapters, the base's outputs at init, one step that changes only the adapter."""
    expected = output(base, batch)
    model = wrap_for_test(method, base)
    assert {t.dtype for t in model.adapter_state_dict().values()} == {torch.float32}
    torch.testing.assert_close(output(model, batch), expected, atol=atol, rtol=0)
    perturb(model)
    _step_changes_only_the_adapter(model, batch)
    return model


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
@pytest.mark.parametrize("method", DECLARING)
def test_declaring_methods_train_on_a_quantized_layer(method, kind):
    """Float32 adapters read the layer's shape, never its packed weight; the base equals itself at init and stays frozen."""
    base = _int8(kind)
    batch = tiny_batch()
    _wrapped_and_trained(method, base, batch)


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_merging_into_a_quantized_base_is_refused(method):
    model = wrap_for_test(method, _int8("tiny-llama"))
    packed = model.model.model.layers[0].self_attn.v_proj.base.weight.clone()
    with pytest.raises(
        ValueError, match=r"merge: the base model's weights are quantized.*model.quantization=null\) and merge there"
    ):
        zoo.merge(model)
    assert torch.equal(model.model.model.layers[0].self_attn.v_proj.base.weight, packed)


@pytest.mark.parametrize("method", OTHERS)
def test_methods_that_do_not_declare_it_are_refused_a_quantized_model(method):
    with pytest.raises(
        ValueError, match=f"method '{method}' supports full-precision base models, not the quantized LlamaForCausalLM"
    ):
        wrap_for_test(method, _int8("tiny-llama"))


@pytest.mark.parametrize("method", OTHERS)
def test_a_run_of_a_method_that_does_not_declare_it_stops_before_loading(method):
    with pytest.raises(
        ValueError,
        match=rf"model.quantization='4bit': method '{method}' does not declare quantized_base.*"
        rf"methods that do: \['adapter', 'ia3', 'lora', 'lora_plus'\]",
    ):
        check_quantized_base("4bit", zoo.get_method(method))


def test_declaring_methods_and_baselines_pass_the_check():
    assert "full_finetune" in OTHERS  # it changes every base weight: it cannot declare a packed base
    for method in DECLARING:
        check_quantized_base("4bit", zoo.get_method(method))
    check_quantized_base("8bit", None)  # a baseline trains no method


def test_unknown_quantization_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"quantization '3bit' is not one of \('4bit', '8bit'\) \(or null: full precision\)"):
        ModelConfig(name="HuggingFaceTB/SmolLM2-135M", quantization="3bit")


@pytest.mark.parametrize("field", ["quantization", "device_map"])
def test_tiny_models_refuse_what_only_from_pretrained_does(field):
    value = "4bit" if field == "quantization" else "auto"
    with pytest.raises(
        ValueError, match=rf"model.{field}='{value}' applies to hub and local models.*tiny-llama is built in-process"
    ):
        ModelConfig(name="tiny-llama", **{field: value})


def test_no_cuda_is_refused_before_anything_loads(monkeypatch, tmp_path):
    monkeypatch.setattr(quantization, "_cuda_available", lambda: False)
    with pytest.raises(
        RuntimeError, match=r"model.quantization='8bit' needs a CUDA device, and none is visible; use model.quantization=null"
    ):
        load_model(ModelConfig(name=str(tmp_path / "not-there"), quantization="8bit"))  # refused before the folder is read


def test_missing_bitsandbytes_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(quantization, "_cuda_available", lambda: True)
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else found(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"model.quantization='4bit' needs bitsandbytes: `pip install bitsandbytes`"):
        quantization_config("4bit")


def test_4bit_is_qlora_recipe(monkeypatch):
    monkeypatch.setattr(quantization, "_cuda_available", lambda: True)
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "bitsandbytes" else found(name, *a))
    four, eight = quantization_config("4bit"), quantization_config("8bit")
    assert (four.load_in_4bit, four.bnb_4bit_quant_type, four.bnb_4bit_use_double_quant, four.bnb_4bit_compute_dtype) == (
        True,
        "nf4",
        True,
        torch.bfloat16,
    )
    assert eight.load_in_8bit and not eight.load_in_4bit


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny Llama saved as a local folder, which from_pretrained can quantize."""
    tokenizer = word_tokenizer(VOCABULARY)
    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_model("tiny-llama", vocab_size=max(len(tokenizer), VOCAB_SIZE), seed=0).save_pretrained(path)  # tiny_batch's ids too
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def cpu_quantization(monkeypatch):
    """Lift zoo's CUDA-only rule: bitsandbytes quantizes on the CPU too, so the tests can exercise its real layers."""
    monkeypatch.setattr(quantization, "_cuda_available", lambda: True)


def _device_map() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is not installed (pip install -e .[gpu])")
@pytest.mark.parametrize("bits", ["4bit", "8bit"])
@pytest.mark.parametrize("method", DECLARING)
def test_declaring_methods_train_on_bitsandbytes_layers(method, bits, folder, cpu_quantization):
    import bitsandbytes as bnb

    base, _ = load_model(ModelConfig(name=str(folder), quantization=bits, device_map=_device_map()))
    layer = {"4bit": bnb.nn.Linear4bit, "8bit": bnb.nn.Linear8bitLt}[bits]
    assert isinstance(base.model.layers[0].self_attn.v_proj, layer) and base.model.layers[0].self_attn.v_proj.weight.dtype in (
        torch.uint8,
        torch.int8,
    )
    batch = {k: v.to(base.device) for k, v in tiny_batch().items()}
    # bitsandbytes' CPU 4-bit matmul picks its kernel by the input's layout, and a wrapper's reshaped input takes
    # another one than the bare layer's: measured 2.2e-3 to 2.8e-3 apart on these logits, with the adapter at identity
    model = _wrapped_and_trained(method, base, batch, atol=5e-3 if bits == "4bit" else 1e-6)
    if model.spec.mergeable:
        with pytest.raises(ValueError, match="the base model's weights are quantized"):
            zoo.merge(model)


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is not installed (pip install -e .[gpu])")
def test_a_qlora_run_trains_and_saves_its_adapter(folder, cpu_quantization, tmp_path):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        cfg = compose(
            "config",
            overrides=[
                "trainer.progress=false",
                "trainer=smoke",
                "trainer.max_steps=2",
                "task.n_train=16",
                "task.n_eval=16",
                "predictions_cache=null",
                f"model.name={folder}",
                "model.quantization=4bit",
                f"model.device_map={_device_map()}",
                "model.gradient_checkpointing=true",
                f"trainer.device={_device_map()}",
                "method=lora",
            ],
        )
    record = run(cfg, tmp_path)
    assert record.train_steps == 2 and 0.0 <= record.scores["accuracy"] <= 1.0
    meta = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert meta["method"] == "lora"
