"""The ``zoo`` app's config composed in-process, as the command line would give it, without progress bars."""
from __future__ import annotations

from hydra import compose, initialize_config_module

from zoo.runner.config import store_configs


def app_config(*overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose("config", overrides=["trainer.progress=false", *overrides])
