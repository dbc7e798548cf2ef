"""Templates, label words, batching, metrics and flips."""

from __future__ import annotations

import pytest

from zoo.evaluation.flips import flips
from zoo.models.language import VOCABULARY
from zoo.models.tokenizer import word_tokenizer
from zoo.tasks.data import ClassificationData, Example
from zoo.tasks.metrics import classification_metrics
from zoo.tasks.prompt import PromptFormat, batches
from zoo.tasks.synthetic import synthetic_sentiment

TOK = word_tokenizer(VOCABULARY)


def test_template_needs_both_placeholders():
    with pytest.raises(ValueError, match=r"lacks the \{answer\} placeholder"):
        PromptFormat("{text} it was", ["bad", "good"])
    with pytest.raises(ValueError, match=r"lacks the \{text\} placeholder"):
        PromptFormat("it was {answer}", ["bad", "good"])


def test_unknown_label_word_is_refused():
    with pytest.raises(ValueError, match="label word 'terrible' is unknown to the tokenizer"):
        PromptFormat("{text} it was {answer}", ["terrible", "good"]).label_token_ids(TOK)


def test_long_text_is_cut_never_the_template():
    fmt = PromptFormat("review : {text} . it was {answer}", ["bad", "good"])
    ids = fmt.encode(TOK, " ".join(["film"] * 50), max_length=10)
    assert len(ids) == 10
    assert TOK.convert_ids_to_tokens(ids) == ["review", ":", "film", "film", "film", "film", "film", ".", "it", "was"]
    with pytest.raises(ValueError, match="leaves no room for text"):
        fmt.encode(TOK, "film", max_length=5)


def test_batches_are_left_padded_and_cover_every_example_once():
    encoded = [[5] * n for n in (3, 7, 2, 5, 4)]
    out = batches(encoded, [0, 1, 0, 1, 0], batch_size=2, pad_id=0, seed=3)
    seen = sorted(i for b in out for i in b["index"].tolist())
    assert seen == [0, 1, 2, 3, 4]
    for b in out:
        assert (b["attention_mask"][:, -1] == 1).all()  # the answer position is last in every row
        assert ((b["input_ids"] == 0) == (b["attention_mask"] == 0)).all()


def test_synthetic_task_is_balanced_and_reproducible():
    a, b = synthetic_sentiment(64, 32, seed=1), synthetic_sentiment(64, 32, seed=1)
    assert a == b and sum(e.label for e in a.train) == 32
    assert all(TOK.unk_token_id not in TOK(e.text)["input_ids"] for e in a.train)


def test_class_without_examples_is_refused():
    with pytest.raises(ValueError, match=r"classes \['positive'\] have no training example"):
        ClassificationData([Example("a", 0)], [Example("b", 1)], ["negative", "positive"])


def test_metrics_by_hand():
    m = classification_metrics([0, 1, 1, 1], [0, 0, 1, 1], ["n", "p"])
    assert m["accuracy"] == 0.75 and m["confusion"] == [[1, 1], [0, 2]]
    assert m["per_class"]["p"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["n"]["recall"] == 0.5
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_flips_count_corrections_and_regressions():
    before, after, true = [0, 0, 1, 1, 2], [1, 0, 0, 2, 1], [1, 0, 1, 0, 0]
    f = flips(before, after, true, ["a", "b", "c"])
    assert (f["flipped"], f["corrections"], f["regressions"], f["other_changes"]) == (4, 1, 1, 2)
    assert f["changed"]["a"] == {"b": 1, "c": 0} and f["changed"]["b"] == {"a": 1, "c": 1}
    assert f["before"]["accuracy"] == 0.4 and f["after"]["accuracy"] == 0.4
