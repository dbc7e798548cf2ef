"""Scores of generated responses against the references: exact match and ROUGE-L F.

Exact match compares normalised texts: lower case, punctuation removed, whitespace collapsed
(so ``"Ad sales boost Time Warner profit."`` matches ``"ad sales boost time warner profit"``).
ROUGE-L F is the F-measure of the longest common subsequence of words, from Google's
``rouge-score`` package, whose tokenizer lower-cases and keeps only letters and digits; an
empty response scores 0.
"""
from __future__ import annotations

import unicodedata

from rouge_score.rouge_scorer import RougeScorer

_ROUGE = RougeScorer(["rougeL"])


def normalise(text: str) -> str:
    """``text`` lower-cased, without punctuation (any Unicode punctuation), whitespace runs as one space, stripped."""
    kept = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text.lower())
    return " ".join(kept.split())


def exact_match(prediction: str, reference: str) -> bool:
    return normalise(prediction) == normalise(reference)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F of ``prediction`` against ``reference`` (0 for an empty prediction)."""
    return _ROUGE.score(reference, prediction)["rougeL"].fmeasure


def example_scores(predictions: list[str], references: list[str]) -> tuple[list[bool], list[float]]:
    """Per example, in order: whether the response matches its reference exactly (normalised), and its ROUGE-L F.

    Raises:
        ValueError: the lists differ in length or are empty.
    """
    if len(predictions) != len(references) or not references:
        raise ValueError(f"need equally long, non-empty predictions and references, got {len(predictions)} and {len(references)}")
    return ([exact_match(p, r) for p, r in zip(predictions, references)], [rouge_l(p, r) for p, r in zip(predictions, references)])


def generation_metrics(predictions: list[str], references: list[str], log_likelihood: float, response_tokens: int) -> dict:
    """Mean exact match and ROUGE-L F over the examples, and the response log-likelihood per token.

    ``log_likelihood`` is the sum of the references' token log-probabilities under teacher
    forcing (end-of-sequence tokens included) over ``response_tokens`` tokens: the per-token
    figure weighs every token alike, so longer responses count for more.
    """
    if response_tokens < 1:
        raise ValueError(f"response_tokens must be at least 1, got {response_tokens}")
    matches, rouge = example_scores(predictions, references)
    n = len(references)
    return {
        "exact_match": sum(matches) / n,
        "rouge_l": sum(rouge) / n,
        "log_likelihood_per_token": log_likelihood / response_tokens,
        "response_tokens": response_tokens,
        "n": n,
    }
