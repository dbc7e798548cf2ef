"""4- and 8-bit base models through bitsandbytes (``model.quantization``): QLoRA's recipe, for the methods that declare it.

``4bit`` is QLoRA's (Dettmers et al., 2023, arXiv:2305.14314): NF4 weights, double quantisation of
their scales, bf16 compute; ``8bit`` is LLM.int8 (Dettmers et al., 2022). transformers swaps every
linear layer but the output head for a bitsandbytes one as it loads the model. Only methods whose
spec declares ``quantized_base`` train on such a base (their modules read a layer's shape, never its
packed weight); zoo runs it on CUDA only, where bitsandbytes' kernels and QLoRA's bf16 compute are meant to run.
"""

from __future__ import annotations

import importlib.util
import os

import torch

from zoo.method import MethodSpec

QUANTIZATIONS = ("4bit", "8bit")


def quantization_config(quantization: str):
    """transformers' ``BitsAndBytesConfig`` for ``quantization`` (one of :data:`QUANTIZATIONS`).

    Raises:
        RuntimeError: no CUDA device is visible. ModuleNotFoundError: bitsandbytes is not installed.
    """
    if not _cuda_available():
        raise RuntimeError(
            f"model.quantization={quantization!r} needs a CUDA device, and none is visible; "
            "use model.quantization=null (full-precision base weights) on this machine"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModuleNotFoundError(
            f"model.quantization={quantization!r} needs bitsandbytes: `pip install bitsandbytes` "
            "(or zoo's extra: `pip install zoo-peft[gpu]`), or use model.quantization=null"
        )
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def quantized_device_map() -> dict[str, int]:
    """The whole quantized model on this process's GPU: ``LOCAL_RANK``'s under ``accelerate launch``, else the current one.

    bitsandbytes quantizes the weights as they move to the GPU, so the model is placed as it loads, never moved later.
    """
    return {"": int(os.environ.get("LOCAL_RANK", torch.cuda.current_device()))}


def check_quantized_base(quantization: str | None, spec: MethodSpec | None) -> None:
    """Refuse, before anything loads, a quantized base for a method that does not declare ``quantized_base`` (None: a baseline).

    Raises:
        ValueError: naming the methods that do.
    """
    if quantization is None or spec is None or spec.quantized_base:
        return
    from zoo.registry import get_method, list_methods

    able = [name for name in list_methods() if get_method(name).quantized_base]
    raise ValueError(
        f"model.quantization={quantization!r}: method {spec.name!r} does not declare quantized_base (it reads or "
        f"changes the base weights, which are packed integers then); methods that do: {able}; "
        "or use model.quantization=null"
    )


def _cuda_available() -> bool:
    return torch.cuda.is_available()
