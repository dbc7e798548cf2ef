"""Scores of generated responses against the references: exact match, ROUGE-L F and chrF.

Exact match compares normalised texts: lower case, punctuation removed, whitespace collapsed
(so ``"Ad sales boost Time Warner profit."`` matches ``"ad sales boost time warner profit"``).
ROUGE-L F is the F-measure of the longest common subsequence of words, from Google's
``rouge-score`` package, whose tokenizer lower-cases and keeps only letters and digits. chrF
(Popović, 2015) is the F-score, recall weighing twice as much as precision, of the character
1- to 6-grams (spaces removed, case kept), from the ``sacrebleu`` package: its sentence score,
kept on 0-1 as ROUGE-L is (sacrebleu's is 0-100). It credits a word nearly right (``"resigns"``
for ``"resignation"``), which ROUGE-L counts as a miss. An empty response scores 0 on each.
"""

from __future__ import annotations

import functools
import unicodedata


@functools.cache
def _scorers():
    """The ROUGE-L and chrF scorers, imported on first use: rouge-score imports nltk, a quarter of a second that every
    zoo process would otherwise pay."""
    from rouge_score.rouge_scorer import RougeScorer
    from sacrebleu.metrics import CHRF

    return RougeScorer(["rougeL"]), CHRF()


def normalise(text: str) -> str:
    """``text`` lower-cased, without punctuation (any Unicode punctuation), whitespace runs as one space, stripped."""
    kept = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text.lower())
    return " ".join(kept.split())


def exact_match(prediction: str, reference: str) -> bool:
    return normalise(prediction) == normalise(reference)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F of ``prediction`` against ``reference`` (0 for an empty prediction)."""
    return _scorers()[0].score(reference, prediction)["rougeL"].fmeasure


def chrf(prediction: str, reference: str) -> float:
    """chrF of ``prediction`` against ``reference``, 0-1 (0 for an empty prediction)."""
    return _scorers()[1].sentence_score(prediction, [reference]).score / 100


def example_scores(predictions: list[str], references: list[str]) -> dict[str, list[float]]:
    """Per example, in order, under each metric's name: the response's ROUGE-L F, whether it matches its reference
    exactly (normalised; 1 or 0) and its chrF.

    Raises:
        ValueError: the lists differ in length or are empty.
    """
    if len(predictions) != len(references) or not references:
        raise ValueError(f"need equally long, non-empty predictions and references, got {len(predictions)} and {len(references)}")
    pairs = list(zip(predictions, references))
    return {
        "rouge_l": [rouge_l(p, r) for p, r in pairs],
        "exact_match": [int(exact_match(p, r)) for p, r in pairs],
        "chrf": [chrf(p, r) for p, r in pairs],
    }


def generation_metrics(per_example: dict[str, list[float]], log_likelihood: float, response_tokens: int) -> dict:
    """Mean ROUGE-L F, exact match and chrF over the examples (:func:`example_scores`), and the response log-likelihood per token.

    ``log_likelihood`` is the sum of the references' token log-probabilities under teacher
    forcing (end-of-sequence tokens included) over ``response_tokens`` tokens: the per-token
    figure weighs every token alike, so longer responses count for more.
    """
    if response_tokens < 1:
        raise ValueError(f"response_tokens must be at least 1, got {response_tokens}")
    n = len(next(iter(per_example.values())))
    return {
        **{name: sum(values) / n for name, values in per_example.items()},
        "log_likelihood_per_token": log_likelihood / response_tokens,
        "response_tokens": response_tokens,
        "n": n,
    }
