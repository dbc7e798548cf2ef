"""Adapters both ways between zoo and peft's folder format (``export_peft``, ``import_peft``).

The converters are the methods' own, declared where each is registered (:class:`zoo.PeftFormat`);
this package holds the folder format and the two directions, and knows no method by name.
"""

from zoo.io.peft_interchange.convert import export_peft, import_peft
from zoo.io.peft_interchange.format import read_peft_config
from zoo.peft_format import NotConvertible

__all__ = ["NotConvertible", "export_peft", "import_peft", "read_peft_config"]
