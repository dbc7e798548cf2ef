"""Adapters both ways between zoo and peft's folder format (``export_peft``, ``import_peft``)."""
from zoo.peft_interchange.convert import export_peft, import_peft
from zoo.peft_interchange.format import NotConvertible, read_peft_config

__all__ = ["NotConvertible", "export_peft", "import_peft", "read_peft_config"]
