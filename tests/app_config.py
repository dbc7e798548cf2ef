"""The ``zoo`` app's config composed in-process, as the command line would give it, without progress bars.

A run so composed times one latency batch, not 20: the latency record is under test only where a test
says ``latency_batches=`` itself (a later override wins).
"""

from __future__ import annotations

from hydra import compose, initialize_config_module

from zoo.runner.config import store_configs


def app_config(*overrides: str):
    store_configs()
    with initialize_config_module(config_module="zoo.conf", version_base=None):
        return compose("config", overrides=["trainer.progress=false", "latency_batches=1", *overrides])
