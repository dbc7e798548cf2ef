"""Task kinds and baselines from third-party packages: the entry-point groups ``zoo.task_kinds`` and ``zoo.baselines``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

import zoo.runtime.plugins
from zoo.runner.baselines import ENTRY_POINT_GROUP as BASELINES
from zoo.runner.baselines import BaselineSpec, get_baseline, list_baselines, register_baseline
from zoo.runner.baselines import spec as baseline_registry
from zoo.task_kinds import ENTRY_POINT_GROUP as KINDS
from zoo.task_kinds import (
    MetricSpec,
    TaskKind,
    get_metric,
    get_task_kind,
    list_task_kinds,
    register_task_kind,
    unregister_task_kind,
)


@dataclass
class FakeEntryPoint:
    """What importlib.metadata hands out for an installed plug-in: loading it imports the module, which registers."""

    name: str
    action: object
    dist = None

    @property
    def value(self) -> str:
        return f"plugin_{self.name}"

    def load(self):
        return self.action()


class Toy(TaskKind):
    name = "toy"
    metrics = (MetricSpec("toy_score", "toy score", per_example=True),)
    outputs = "toy.jsonl"

    def load(self, task):
        raise NotImplementedError

    def formulate(self, task, tokenizer, model_kind, *, name, data, demonstrations, model):
        raise NotImplementedError

    def write_outputs(self, folder, data, before, after):
        raise NotImplementedError


def _broken():
    raise ImportError("No module named 'missing_dependency'")


@pytest.fixture
def installed(monkeypatch):
    """Entry points of a group as given, loaded afresh by the next lookup."""

    def install(wanted: str, *points: FakeEntryPoint):
        monkeypatch.setattr(
            zoo.runtime.plugins.importlib.metadata, "entry_points", lambda group=None: list(points) if group == wanted else []
        )
        monkeypatch.delitem(zoo.runtime.plugins._loaded, wanted, raising=False)

    return install


def test_a_task_kind_from_an_entry_point_is_registered_on_first_lookup_and_a_broken_one_is_reported(installed, caplog):
    installed(KINDS, FakeEntryPoint("toy", lambda: register_task_kind(Toy())), FakeEntryPoint("broken", _broken))
    try:
        with caplog.at_level(logging.WARNING, logger="zoo.runtime.plugins"):
            assert "toy" in list_task_kinds() and get_task_kind("toy").objective.name == "toy_score"
        assert "plug-in 'broken' of group 'zoo.task_kinds'" in caplog.text and "missing_dependency" in caplog.text
        assert zoo.runtime.plugins.load_entry_points(KINDS) == {
            "plugin_broken": "ImportError: No module named 'missing_dependency'"
        }
    finally:
        unregister_task_kind("toy")


def test_a_baseline_from_an_entry_point_is_a_choice_once_loaded(installed):
    installed(
        BASELINES, FakeEntryPoint("shuffled", lambda: register_baseline(BaselineSpec("shuffled_prompt", formulation="prompt")))
    )
    try:
        assert "shuffled_prompt" in list_baselines() and get_baseline("shuffled_prompt").untrained
    finally:
        del baseline_registry._baselines["shuffled_prompt"]


def test_an_unknown_task_kind_is_refused_naming_the_closest_and_every_registered_one():
    with pytest.raises(
        ValueError,
        match=r"task.kind 'generatoin' is not a registered task kind. Did you mean 'generation'\? "
        r"Registered: classification, generation",
    ):
        get_task_kind("generatoin")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (type("Nameless", (Toy,), {"name": "Bad Name"})(), "task kind name 'Bad Name' is invalid"),
        (type("Mute", (Toy,), {"name": "mute", "metrics": ()})(), "task kind 'mute' declares no metrics"),
        (
            type("Odd", (Toy,), {"name": "odd", "model_kinds": ("seq2seq",)})(),
            r"model_kinds \('seq2seq',\) must be a non-empty subset",
        ),
    ],
)
def test_a_bad_task_kind_is_refused_at_registration(kind, message):
    with pytest.raises(ValueError, match=message):
        register_task_kind(kind)


def test_a_metric_name_cannot_be_registered_twice_with_another_meaning():
    clash = type("Clash", (Toy,), {"name": "clash", "metrics": (MetricSpec("accuracy", "accuracy", higher_is_better=False),)})()
    with pytest.raises(ValueError, match="metric 'accuracy' is already registered"):
        register_task_kind(clash)
    assert "clash" not in list_task_kinds()


def test_a_method_or_baseline_declaring_task_kinds_gives_names():
    with pytest.raises(ValueError, match=r"baseline 'nowhere': task_kinds \(\) must be a non-empty tuple of task kind names"):
        register_baseline(BaselineSpec("nowhere", formulation="prompt", task_kinds=()))


def test_a_task_kind_plugin_failing_after_it_registered_leaves_neither_its_kind_nor_its_metrics(installed, caplog):
    def half():
        register_task_kind(type("Half", (Toy,), {"name": "half", "metrics": (MetricSpec("half_score", "half score"),)})())
        raise ImportError("No module named 'missing_dependency'")

    installed(KINDS, FakeEntryPoint("half", half))
    with caplog.at_level(logging.WARNING, logger="zoo.runtime.plugins"):
        assert "half" not in list_task_kinds()
    assert "failed to load and registers nothing: ImportError: No module named 'missing_dependency'" in caplog.text
    assert get_metric("half_score").label == "half_score"  # an unknown metric reads under its own name: not registered


def test_a_baseline_plugin_failing_after_it_registered_is_not_a_choice(installed):
    def half():
        register_baseline(BaselineSpec("half_prompt", formulation="prompt"))
        raise ImportError("No module named 'missing_dependency'")

    installed(BASELINES, FakeEntryPoint("half", half))
    assert "half_prompt" not in list_baselines()
    assert zoo.runtime.plugins.load_entry_points(BASELINES) == {
        "plugin_half": "ImportError: No module named 'missing_dependency'"
    }
