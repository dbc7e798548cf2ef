"""Built-in methods. Each import registers one method; plugins use the ``zoo.methods`` entry points."""

from zoo.methods import (
    adapter,  # noqa: F401
    closed_form_head,  # noqa: F401
    full_finetune,  # noqa: F401
    galore,  # noqa: F401
    gift,  # noqa: F401
    ia3,  # noqa: F401
    llama_adapter,  # noqa: F401
    lora,  # noqa: F401
    lora_plus,  # noqa: F401
    loreft,  # noqa: F401
    p_tuning,  # noqa: F401
    prefix_tuning,  # noqa: F401
    prompt_tuning,  # noqa: F401
)
