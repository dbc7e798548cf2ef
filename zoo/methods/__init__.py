"""Built-in methods. Each import registers one method; plugins use the ``zoo.methods`` entry points."""
from zoo.methods import adapter  # noqa: F401
from zoo.methods import closed_form_head  # noqa: F401
from zoo.methods import gift  # noqa: F401
from zoo.methods import ia3  # noqa: F401
from zoo.methods import llama_adapter  # noqa: F401
from zoo.methods import lora  # noqa: F401
from zoo.methods import p_tuning  # noqa: F401
from zoo.methods import prefix_tuning  # noqa: F401
from zoo.methods import prompt_tuning  # noqa: F401
