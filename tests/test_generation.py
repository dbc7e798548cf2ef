"""Generation tasks: pairs, prompts and batches, the response-only loss, decoding and its scores (tiny models, no network)."""

from __future__ import annotations

import copy
import hashlib
import math

import pytest
import sacrebleu
import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import CausalLMOutput

from zoo.evaluation.generation import evaluate_generation, generate_responses
from zoo.models.language import NEGATIVE, POSITIVE
from zoo.models.load import ModelConfig, load_model
from zoo.models.tiny import TINY_CAUSAL
from zoo.runner.plan import task_kind
from zoo.task_kinds import get_task_kind
from zoo.tasks.config import TaskConfig
from zoo.tasks.data import Example, examples_fingerprint
from zoo.tasks.generation import IGNORE, GenerationFormulation, GenerationPrompt, generation_formulation, response_loss
from zoo.tasks.generation_metrics import chrf, exact_match, example_scores, generation_metrics, normalise, rouge_l
from zoo.tasks.generation_tasks import build_generation_task
from zoo.tasks.pairs import GenerationData, Pair
from zoo.tasks.synthetic_generation import synthetic_generation
from zoo.testing.models import make_model

TEMPLATE = "review : {text} . answer : {answer}"


def _task(**overrides) -> TaskConfig:
    return TaskConfig(
        **{
            "name": "synthetic_generation",
            "kind": "generation",
            "template": TEMPLATE,
            "max_new_tokens": 8,
            "max_length": 48,
            **overrides,
        }
    )


@pytest.fixture(scope="module")
def tiny_llama():
    """The default tiny-llama (shipped weights) and its tokenizer over the synthetic vocabulary."""
    return load_model(ModelConfig())


def _majority_is_positive(text: str) -> bool:
    """The review's polarity, counted here independently: each polar word, flipped by a "not" right before it."""
    words, score = text.split(), 0
    for i, w in enumerate(words):
        if w in POSITIVE or w in NEGATIVE:
            score += 1 if (w in POSITIVE) != (i > 0 and words[i - 1] == "not") else -1
    return score > 0


def test_the_response_is_the_reviews_verdict_in_two_words():
    train, evaluation = synthetic_generation(40, 10, seed=3)
    assert (train, evaluation) == synthetic_generation(40, 10, seed=3) and train != synthetic_generation(40, 10, seed=4)[0]
    assert len(train) == 40 and len(evaluation) == 10
    assert [p.response for p in train].count("positive yes") == 20 and {p.response for p in train} == {
        "positive yes",
        "negative no",
    }
    assert all(p.response == ("positive yes" if _majority_is_positive(p.text) else "negative no") for p in train + evaluation)


def test_a_generation_task_draws_its_pairs_with_the_data_seed():
    data = build_generation_task(_task(n_train=50, shots_per_class=12, n_eval=7))
    assert len(data.train) == 12 and len(data.eval) == 7
    assert data == build_generation_task(_task(n_train=50, shots_per_class=12, n_eval=7))
    assert data.train != build_generation_task(_task(n_train=50, shots_per_class=12, n_eval=7, seed=1)).train


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"kind": "translation"},
            r"task.kind 'translation' is not a registered task kind\. Registered: classification, generation",
        ),
        ({"kind": "classification"}, r"task 'synthetic_generation' is a generation task: set task.kind=generation"),
        ({"name": "synthetic_sentiment"}, r"task 'synthetic_sentiment' is a classification task: set task.kind=classification"),
        (
            {"name": "my_headlines"},
            r"task.kind=generation reads the built-in generation tasks \['bbc_headlines', 'synthetic_generation'\]",
        ),
        ({"formulation": "head"}, r"task.formulation must be prompt, got 'head'"),
        ({"max_new_tokens": 48}, r"max_new_tokens \(48\) must be below max_length \(48\)"),
    ],
)
def test_bad_generation_task_configs_are_refused_naming_what_would_do(overrides, message):
    """The task's kind checks it when the run is planned (zoo.runner.plan.task_kind), not the config's constructor."""
    task = _task(**overrides)
    with pytest.raises(ValueError, match=message):
        task_kind(task)


def test_a_classification_task_is_recorded_without_the_generation_fields():
    classification = {"name": "synthetic_sentiment", "kind": "classification", "max_new_tokens": 32, "seed": 0}
    assert get_task_kind("classification").recorded_task(classification) == {"name": "synthetic_sentiment", "seed": 0}
    generation = {"name": "synthetic_generation", "kind": "generation", "max_new_tokens": 8}
    assert get_task_kind("generation").recorded_task(generation) == generation


def test_empty_responses_are_refused():
    with pytest.raises(ValueError, match=r"eval pairs \[1\] have an empty response"):
        GenerationData([Pair("a", "b")], [Pair("a", "b"), Pair("c", " ")])


def test_training_batches_put_the_loss_on_the_response_and_its_end_only(tiny_llama):
    _, tok = tiny_llama
    form = GenerationFormulation(GenerationPrompt(TEMPLATE), tok, 40, 8)
    pairs = [Pair("the film is not dull", "not dull"), Pair("fun", "fun")]
    batch = form.training_batches(pairs, 2, seed=None)[0]
    prompts = [tok(f"review : {p.text} . answer :", add_special_tokens=False)["input_ids"] for p in pairs]
    responses = [tok(f" {p.response}", add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for p in pairs]
    for row, i in enumerate(batch["index"].tolist()):
        n, r = len(prompts[i]), len(responses[i])
        assert batch["input_ids"][row, : n + r].tolist() == prompts[i] + responses[i]
        assert batch["labels"][row].tolist() == [IGNORE] * n + responses[i] + [IGNORE] * (batch["labels"].shape[1] - n - r)
        assert batch["attention_mask"][row].tolist() == [1] * (n + r) + [0] * (batch["labels"].shape[1] - n - r)  # right padded
    assert tok.decode(responses[0][:-1]) == "not dull"


def test_the_loss_is_the_mean_cross_entropy_of_the_response_tokens_alone(tiny_llama):
    model, tok = tiny_llama
    form = GenerationFormulation(GenerationPrompt(TEMPLATE), tok, 40, 8)
    batch = form.training_batches([Pair("the film is not dull and fun", "not dull fun"), Pair("fun", "fun")], 2, seed=None)[0]
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    terms = [
        F.cross_entropy(logits[b, t - 1], batch["labels"][b, t])
        for b in range(2)
        for t in range(1, logits.shape[1])
        if batch["labels"][b, t] != IGNORE
    ]
    assert len(terms) == 4 + 2  # "not dull fun </s>" and "fun </s>"
    assert response_loss(model, batch).item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)
    prompt_labelled = dict(batch, labels=torch.where(batch["attention_mask"].bool(), batch["input_ids"], IGNORE))
    assert response_loss(model, prompt_labelled).item() != pytest.approx(response_loss(model, batch).item(), rel=1e-3)


def test_long_texts_are_cut_to_the_prompt_budget_and_the_response_never(tiny_llama):
    _, tok = tiny_llama
    form = generation_formulation(_task(max_length=20, max_new_tokens=6), tok, [])
    long = Pair(" ".join(["film"] * 50), " ".join(["fun"] * 10))
    batch = form.training_batches([long], 1, seed=None)[0]
    prompt = (batch["labels"][0] == IGNORE).sum().item()
    assert prompt == 20 - 6
    assert batch["input_ids"][0, -11:].tolist() == tok(" " + long.response, add_special_tokens=False)["input_ids"] + [
        tok.eos_token_id
    ]
    assert tok.decode(batch["input_ids"][0, prompt - 3 : prompt]) == ". answer :"  # the text was cut, not the template
    assert form.prompt_batches([long], 1)[0]["input_ids"].shape[1] == 14


def test_demonstrations_show_their_responses_before_the_query(tiny_llama):
    _, tok = tiny_llama
    train = [Pair("the film is fun", "fun"), Pair("dull", "dull")]
    form = generation_formulation(_task(demonstrations=1), tok, train)
    (shown,) = form.prompt.demonstrations
    ids = form.prompt_batches([Pair("witty", "witty")], 1)[0]["input_ids"][0].tolist()
    assert tok.decode(ids) == f"review : {shown.text} . answer : {shown.response}\nreview : witty . answer :".replace("\n", " ")
    assert generation_formulation(_task(demonstrations=1), tok, train, with_demonstrations=False).prompt.demonstrations == ()


def test_the_chat_template_holds_the_prompt_as_the_user_turn(tiny_llama):
    _, tok = tiny_llama
    with pytest.raises(ValueError, match="this model's tokenizer has no chat template"):
        generation_formulation(_task(chat_template=True), tok, [])
    tok = copy.deepcopy(tok)
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] == 'user' and 'review' or 'answer' }} : {{ m['content'] }} . {% endfor %}"
        "{% if add_generation_prompt %}answer :{% endif %}"
    )
    form = generation_formulation(_task(chat_template=True, template="{text} {answer}"), tok, [])
    ids = form.prompt_batches([Pair("the film is fun", "fun")], 1)[0]["input_ids"][0].tolist()
    assert tok.decode(ids) == "review : the film is fun . answer :"
    assert form.encode_response("fun") == tok("fun", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]


def test_normalised_exact_match_ignores_case_punctuation_and_spacing():
    assert normalise("  Ad sales boost Time-Warner   profit! ") == "ad sales boost time warner profit"
    assert exact_match("Ad sales boost Time Warner profit.", "ad sales  boost time warner profit")
    assert not exact_match("Ad sales boost Time Warner", "Ad sales boost Time Warner profit")


def test_rouge_l_is_the_f_measure_of_the_longest_common_subsequence():
    assert rouge_l("the cat on mat", "the cat sat on the mat") == pytest.approx(2 * 1.0 * (4 / 6) / (1.0 + 4 / 6))
    assert rouge_l("The CAT, sat!", "the cat sat") == 1.0 and rouge_l("", "the cat") == 0.0


def test_chrf_is_sacrebleus_sentence_score_on_a_0_to_1_scale():
    """ "ab" against "abc": character 1-grams a, b of a, b, c (precision 1, recall 2/3), 2-grams ab of ab, bc (1, 1/2), no
    3-gram in the response; averaged over those two orders, P = 1 and R = 7/12, and F with recall weighing twice (beta 2) is
    5 P R / (4 P + R) = 7/11. Spaces are not characters to chrF; case is kept."""
    assert chrf("ab", "abc") == chrf("a b", "abc") == pytest.approx(7 / 11)
    assert chrf("positive yes", "positive yes") == 1.0 and chrf("AB", "ab") == 0.0 and chrf("", "the cat") == 0.0
    scorer = sacrebleu.metrics.CHRF()
    for response, reference in [("ab", "abc"), ("Blunkett resigns", "Profile: David Blunkett"), ("positive no", "negative no")]:
        assert chrf(response, reference) == pytest.approx(scorer.sentence_score(response, [reference]).score / 100)
    assert chrf("Blunkett resigns", "Blunkett resignation") > rouge_l("Blunkett resigns", "Blunkett resignation") == 0.5


def test_generation_metrics_average_over_examples_and_weigh_tokens_alike():
    metrics = generation_metrics(example_scores(["a b", "c"], ["a b", "c d"]), log_likelihood=-6.0, response_tokens=4)
    assert metrics == {
        "exact_match": 0.5,
        "rouge_l": pytest.approx((1.0 + 2 / 3) / 2),
        "chrf": pytest.approx((1.0 + 5 / 9) / 2),
        "log_likelihood_per_token": -1.5,
        "response_tokens": 4,
        "n": 2,
    }  # "c" of "cd": 1-grams P 1, R 1/2; F 5/9
    with pytest.raises(ValueError, match="equally long, non-empty"):
        generation_metrics(example_scores([], []), 0.0, 1)


@pytest.mark.parametrize("family", TINY_CAUSAL)
def test_batched_decoding_writes_what_one_prompt_at_a_time_does(family, tokenizer):
    model = make_model(family).eval()
    prompt = GenerationPrompt("w1 w2 {text} . {answer}")
    form = GenerationFormulation(prompt, tokenizer, 24, 6)
    pairs = [Pair(" ".join(f"w{(7 * i + j) % 60}" for j in range(1 + 3 * i)), "w5") for i in range(5)]
    batched = generate_responses(model, form.prompt_batches(pairs, 5), form)
    single = [generate_responses(model, form.prompt_batches([p], 1), form)[0][1] for p in pairs]
    assert [text for _, text in sorted(batched)] == single
    assert any(single)  # a random model writes words, which this comparison would otherwise not see


def test_decoding_stops_at_the_end_of_sequence_token(tokenizer):
    form = GenerationFormulation(GenerationPrompt("{text} {answer}"), tokenizer, 10, 4)
    w1, w2 = tokenizer.convert_tokens_to_ids(["w1", "w2"])
    assert form.decode([w1, w2, tokenizer.eos_token_id, w1]) == "w1 w2"


class Oracle(nn.Module):
    """A 'model' that writes each pair's reference (then eos) and predicts every next token with probability 1/2."""

    def __init__(self, form: GenerationFormulation, pairs: list[Pair], vocab: int):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.form, self.vocab = form, vocab
        self.answers = {tuple(form.encode_prompt(p.text)): form.encode_response(p.response) for p in pairs}

    def forward(self, input_ids, attention_mask):
        logits = torch.full((*input_ids.shape, self.vocab), -math.inf)  # (B, T, V)
        following = input_ids.roll(-1, dims=1)  # (B, T): the token each position predicts (the last one's is never scored)
        logits.scatter_(-1, following[..., None], 0.0)
        logits.scatter_(-1, torch.where(following == 0, 1, 0)[..., None], 0.0)  # and one other token, as likely
        return CausalLMOutput(logits=logits)

    def generate(self, input_ids, attention_mask, max_new_tokens, do_sample, eos_token_id, pad_token_id):
        rows = [self.answers[tuple(ids[mask.bool()].tolist())][:max_new_tokens] for ids, mask in zip(input_ids, attention_mask)]
        width = max(map(len, rows))
        return torch.cat([input_ids, torch.tensor([r + [pad_token_id] * (width - len(r)) for r in rows])], dim=1)


def test_a_model_that_writes_the_references_scores_one_and_its_likelihood_is_read_per_token(tiny_llama):
    _, tok = tiny_llama
    data = build_generation_task(_task(n_eval=9))
    form = generation_formulation(_task(), tok, data.train)
    evaluation = evaluate_generation(Oracle(form, data.eval, len(tok)), data.eval, form, batch_size=4)
    assert evaluation.outputs == [p.response for p in data.eval]
    scores, details = evaluation.scores, evaluation.details
    assert list(scores) == [
        "rouge_l",
        "exact_match",
        "chrf",
        "log_likelihood_per_token",
    ]  # the kind's order: the report's columns
    assert scores["exact_match"] == scores["rouge_l"] == scores["chrf"] == 1.0 and details["n"] == 9
    assert evaluation.example_scores == {"rouge_l": [1.0] * 9, "exact_match": [1] * 9, "chrf": [1.0] * 9}
    tokens = sum(len(form.encode_response(p.response)) for p in data.eval)
    assert details["response_tokens"] == tokens
    assert scores["log_likelihood_per_token"] == pytest.approx(math.log(0.5))


def test_example_scores_are_each_responses_rouge_l_exact_match_and_chrf_in_order():
    scores = example_scores(["A b!", "c", ""], ["a b", "c d", "e"])
    assert list(scores) == [m.name for m in get_task_kind("generation").metrics if m.per_example]
    assert scores["exact_match"] == [1, 0, 0] and scores["rouge_l"] == [1.0, pytest.approx(2 / 3), 0.0]
    assert scores["chrf"] == [chrf("A b!", "a b"), chrf("c", "c d"), 0.0]
    with pytest.raises(ValueError, match="equally long, non-empty predictions and references, got 1 and 2"):
        example_scores(["a"], ["a", "b"])


def test_the_fingerprint_of_pairs_tells_other_references_apart():
    pairs = [Pair("an article", "its headline"), Pair("another", "its own")]
    assert examples_fingerprint(pairs) == examples_fingerprint(list(pairs))
    assert examples_fingerprint(pairs) != examples_fingerprint([pairs[0], Pair("another", "a rewritten one")])
    assert (
        examples_fingerprint([Example("a", 1)]) == hashlib.sha256(b'[["a", 1]]').hexdigest()[:16]
    )  # as records before pairs had
