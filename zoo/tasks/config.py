"""Task configuration, the table of built-in tasks, and the data a run trains and evaluates on.

A task is of a registered kind (``kind``, zoo.task_kinds): ``classification`` (the default; what
follows), ``generation``, whose built-in tasks (zoo.tasks.generation_tasks) are (text, response)
pairs, or a plug-in's; the kind checks the fields it reads when the run is planned. Data comes
from a built-in task (``name``), a local file or folder (``path``) or a Hugging
Face dataset (``dataset``); then ``shots_per_class`` examples of each class are drawn for
training with the sample seed and ``n_eval`` examples of ``eval_split`` for evaluation with the
data seed. The two seeds are one unless ``sample_seed`` is set: then every run of a task is
evaluated on the same examples (paired comparisons stay valid) while the training sample varies.
"""

from __future__ import annotations

import codecs
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zoo.runtime.typed_fields import check_fields
from zoo.tasks.bbc_news import BBC_TOPIC
from zoo.tasks.columns import ColumnMapping
from zoo.tasks.data import ClassificationData, Splits
from zoo.tasks.files import load_files
from zoo.tasks.hub import load_hub
from zoo.tasks.movie_sentiment import MOVIE_SENTIMENT
from zoo.tasks.prepared import load_prepared
from zoo.tasks.splits import shots_per_class, stratified_sample
from zoo.tasks.synthetic import synthetic_sentiment, synthetic_validation
from zoo.tasks.tweet_sentiment import TWEET_SENTIMENT

log = logging.getLogger(__name__)
SHOWN_CLASSES = 10
"""How many class names an error shows; a task may have thousands."""
FORMULATIONS = ("prompt", "head")


@dataclass
class TaskConfig:
    name: str = "synthetic_sentiment"
    """A built-in task (zoo.tasks.config.TASKS, or a built-in task of another kind with its ``kind``), or a name of your
    choice for data from ``path`` or ``dataset``."""
    kind: str = "classification"
    """The task kind (zoo.task_kinds.list_task_kinds()): classification, or generation: the model writes a response (built-in
    generation tasks only, conf/task/*.yaml set it), trained by the response tokens' causal-LM loss, scored by ROUGE-L and
    exact match of its greedy decoding; or a plug-in's kind."""
    path: str | None = None
    """A local .csv/.tsv/.jsonl file (split 80/10/10 by zoo) or a folder of train/validation/test files."""
    dataset: str | None = None
    """A Hugging Face dataset for ``datasets.load_dataset`` (needs ``pip install 'zoo-peft[datasets]'``)."""
    dataset_config: str | None = None
    """The dataset's configuration name (``sst2`` of ``nyu-mll/glue``)."""
    text_column: str = "text"
    label_column: str = "label"
    label_names: list[str] | None = None
    """Class names in class order; None: from the data (see zoo.tasks.columns). For path/dataset only."""
    label_map: dict[Any, str] = field(default_factory=dict)
    """Raw label -> class name (renames, merges; rows with other labels are dropped); empty: labels as they are.
    Keys are compared as text. On the command line: ``+task.label_map={1:negative,5:positive}`` (Hydra adds keys
    to a dict with ``+``). For path/dataset only."""
    encoding: str = "utf-8"
    """Text encoding of local files (a Python codec name: utf-8, latin-1, cp1252, utf-16, ...)."""
    formulation: str = "prompt"
    """prompt: the LM scores the label words after the template; head: a new linear head on the final hidden state."""
    template: str = "review : {text} . it was {answer}"
    """Prompt with {text} and {answer}; a causal LM predicts the answer as the next token (generation: writes the response)."""
    label_words: list[str] = field(default_factory=lambda: ["bad", "good"])
    """One single-token word per class, in class order (generation tasks have none: ignored)."""
    chat_template: bool = False
    """Render the prompt as the user turn of the tokenizer's chat template; the answer starts the assistant turn."""
    system_prompt: str | None = None
    """Chat mode only: None keeps the chat template's default system turn; "" gives an empty one (fewer tokens)."""
    demonstrations: int = 0
    """Training examples per class put before each query, rendered with the template and label word (LM-BFF).
    Generation: this many training pairs, with their responses."""
    demonstration_separator: str = "\n"
    shots_per_class: int | None = None
    """Training examples drawn per class with the data seed; None: the whole training split. Generation: training pairs drawn."""
    n_train: int = 512
    """synthetic_sentiment and synthetic_generation only: how many training examples to generate."""
    n_eval: int | None = 256
    """Evaluation examples, drawn from eval_split with the data seed, stratified (class proportions kept); None: all.
    synthetic_sentiment generates this many (256 when None). Generation: a random sample of pairs."""
    eval_split: str = "test"
    """The split evaluated: test, or validation (to tune on)."""
    max_length: int = 128
    """Longest input in tokens; longer texts are cut, never the template, demonstrations' markup or answer position.
    Generation: the prompt gets ``max_length - max_new_tokens`` of them (texts cut), the response is never cut."""
    max_new_tokens: int = 32
    """Generation only: the most tokens a greedy decoding writes (it stops earlier at the end-of-sequence token)."""
    head_learning_rate: float | None = None
    """formulation=head: the head's learning rate; None: the run's."""
    seed: int = 0
    """Seed of the data itself (evaluation subset; and the training sample and demonstrations unless ``sample_seed``
    is set), separate from the run's seed."""
    sample_seed: int | None = None
    """Seed of the training sample alone: the ``shots_per_class`` draw (synthetic_sentiment: the generated training
    split) and the demonstrations, which come from that sample; the evaluation set stays the data seed's, the same
    for every sample seed. None: the data seed (``sample_seed=seed`` draws the same data as None). The benchmark
    suite sweeps it beside the run's seed to measure how much a score owes to which few examples were drawn."""
    cache_dir: str = "~/.cache/zoo/data"
    """Where built-in real data sets are prepared once."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.formulation not in FORMULATIONS:
            raise ValueError(f"formulation {self.formulation!r} is not one of {FORMULATIONS}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(
                f"encoding {self.encoding!r} is not a text encoding Python knows; e.g. utf-8, latin-1, cp1252"
            ) from None
        if self.path is not None and self.dataset is not None:
            raise ValueError(f"give task.path ({self.path!r}) or task.dataset ({self.dataset!r}), not both")
        if (self.path is not None or self.dataset is not None) and self.name in TASKS:
            raise ValueError(
                f"task.name={self.name!r} is a built-in task with its own data; name your data (task.name=my_task) to load task.path or task.dataset"
            )
        for name, low in (("demonstrations", 0), ("n_train", 1), ("max_length", 2), ("max_new_tokens", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)}")
        for name in ("shots_per_class", "n_eval"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 or null (all), got {getattr(self, name)}")
        if self.head_learning_rate is not None and not 0 < self.head_learning_rate < math.inf:
            raise ValueError(
                f"head_learning_rate must be a finite number above 0 (or null: the run's), got {self.head_learning_rate}"
            )

    @property
    def training_seed(self) -> int:
        """The seed the training sample and the demonstrations are drawn with: ``sample_seed``, else the data seed."""
        return self.seed if self.sample_seed is None else self.sample_seed


def _synthetic(cfg: TaskConfig) -> Splits:
    """The generated splits: training examples of the sample seed's data, validation and evaluation examples of the data seed's."""
    n_eval = cfg.n_eval or 256
    data = synthetic_sentiment(cfg.n_train, n_eval, cfg.seed)
    sample = data if cfg.training_seed == cfg.seed else synthetic_sentiment(cfg.n_train, n_eval, cfg.training_seed)
    splits = {"train": sample.train, "validation": synthetic_validation(n_eval, cfg.seed), "test": data.eval}
    return Splits(splits, "synthetic_sentiment", data.label_names)


TASKS: dict[str, Callable[[TaskConfig], Splits]] = {
    "synthetic_sentiment": _synthetic,
    "movie_sentiment": lambda cfg: load_prepared(MOVIE_SENTIMENT, cfg.cache_dir),
    "tweet_sentiment": lambda cfg: load_prepared(TWEET_SENTIMENT, cfg.cache_dir),
    "bbc_topic": lambda cfg: load_prepared(BBC_TOPIC, cfg.cache_dir),
}


def load_splits(cfg: TaskConfig) -> Splits:
    """Every split of the task's source, before sampling."""
    label_map = {str(k): v for k, v in cfg.label_map.items()} or None
    mapping = ColumnMapping(cfg.text_column, cfg.label_column, cfg.label_names, label_map)
    if cfg.path is not None:
        return load_files(cfg.path, mapping, cfg.encoding)
    if cfg.dataset is not None:
        return load_hub(cfg.dataset, cfg.dataset_config, mapping, cfg.eval_split)
    if cfg.name not in TASKS:
        raise ValueError(
            f"unknown task {cfg.name!r}; built-in tasks: {sorted(TASKS)}; or load your data with task.path or task.dataset"
        )
    return TASKS[cfg.name](cfg)


def label_words_mismatch(cfg: TaskConfig, names: list[str]) -> str:
    """The refusal of label words that are not one per class (the class names shown up to :data:`SHOWN_CLASSES`)."""
    shown = repr(names) if len(names) <= SHOWN_CLASSES else f"{repr(names[:SHOWN_CLASSES])[:-1]}, …]"
    return (
        f"task {cfg.name!r} has {len(names)} classes {shown} but {len(cfg.label_words)} label words {cfg.label_words}: give "
        "task.label_words one single-token word per class, or use task.formulation=head, which needs none"
    )


def build_task(cfg: TaskConfig) -> ClassificationData:
    """The training and evaluation examples of a run.

    Raises:
        ValueError: label words that do not match the classes, a missing split, or a class
            left without examples after filtering and sampling.
    """
    splits = load_splits(cfg)
    names = splits.label_names
    if cfg.formulation == "prompt" and len(cfg.label_words) != len(names):  # a head (task.formulation=head) needs no label words
        raise ValueError(label_words_mismatch(cfg, names))
    train = shots_per_class(splits.split("train"), cfg.shots_per_class, cfg.training_seed)
    short = {names[c]: n for c in range(len(names)) if (n := sum(e.label == c for e in train)) < (cfg.shots_per_class or 0)}
    if short:
        log.warning(
            "task %s: fewer than %d training examples in classes %s; all of them are used", cfg.name, cfg.shots_per_class, short
        )
    evaluation = stratified_sample(splits.split(cfg.eval_split), cfg.n_eval, cfg.seed)
    try:
        return ClassificationData(train, evaluation, names, tuple(dict.fromkeys(splits.read)))
    except ValueError as err:  # an empty split, a class without examples: say whose
        raise ValueError(f"task {cfg.name!r} ({splits.source}): {err}") from err
