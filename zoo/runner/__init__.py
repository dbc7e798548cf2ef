"""The ``zoo`` command: a run's config, pipeline, baselines, prediction cache and resume (Hydra lives here only)."""
