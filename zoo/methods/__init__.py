"""Built-in methods. Each import registers one method; plugins use the ``zoo.methods`` entry points."""
from zoo.methods import closed_form_head  # noqa: F401
from zoo.methods import gift  # noqa: F401
from zoo.methods import lora  # noqa: F401
