"""Prompts with demonstrations and chat templates: what the model reads, and that only texts are ever cut."""

from __future__ import annotations

import pytest

from zoo.models.language import VOCABULARY
from zoo.models.tokenizer import word_tokenizer
from zoo.tasks.data import Example
from zoo.tasks.head import encode_text
from zoo.tasks.prompt import PromptFormat

CHAT_WORDS = ["SYSTEM", "USER", "ASSISTANT", "END", "you", "are", "helpful", "bot", "terse"]
# a default system turn when none is given, as SmolLM2's template does
CHAT = (
    "{% if messages[0]['role'] != 'system' %}SYSTEM you are a very helpful bot END {% endif %}"
    "{% for m in messages %}{{ m['role'] | upper }} {{ m['content'] }} END {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT{% endif %}"
)


@pytest.fixture(scope="module")
def tok():
    tokenizer = word_tokenizer(VOCABULARY + CHAT_WORDS)
    tokenizer.chat_template = CHAT
    return tokenizer


def _tokens(tok, ids):
    return " ".join(tok.convert_ids_to_tokens(ids))


DEMOS = (Example("great film", 1), Example("dull plot", 0))


def test_demonstrations_come_first_with_their_label_words(tok):
    fmt = PromptFormat("review : {text} . it was {answer} .", ["bad", "good"], demonstrations=DEMOS)
    ids = fmt.encode(tok, "witty story", max_length=64)
    assert _tokens(tok, ids) == (
        "review : great film . it was good . review : dull plot . it was bad . review : witty story . it was"
    )


def test_long_texts_are_cut_never_the_markup_or_answer_position(tok):
    fmt = PromptFormat("review : {text} . it was {answer}", ["bad", "good"], demonstrations=DEMOS, chat_template=True)
    long = " ".join(["film"] * 200)
    ids = fmt.encode(tok, long, max_length=48)  # the fixed parts take 40 tokens: 8 are left for the query's text
    assert len(ids) == 48
    assert _tokens(tok, ids).endswith("USER review : " + "film " * 8 + ". it was END ASSISTANT")
    assert "great film" in _tokens(tok, ids) and "dull plot" in _tokens(tok, ids)  # both demonstrations kept whole


def test_demonstration_texts_get_a_fair_share(tok):
    demos = (Example(" ".join(["film"] * 100), 1), Example("dull", 0))
    fmt = PromptFormat("{text} it was {answer}", ["bad", "good"], demonstrations=demos)
    ids = fmt.encode(tok, "fun", max_length=30)
    assert _tokens(tok, ids).startswith("film " * 9 + "film it was good")  # 30 // 3 = 10 tokens of the long text
    assert _tokens(tok, ids).endswith("dull it was bad fun it was")


def test_chat_template_user_turn_and_answer_position(tok):
    fmt = PromptFormat("review : {text} . it was {answer}", ["bad", "good"], chat_template=True)
    assert (
        _tokens(tok, fmt.encode(tok, "fun", 64))
        == "SYSTEM you are a very helpful bot END USER review : fun . it was END ASSISTANT"
    )
    short = PromptFormat("review : {text} . it was {answer}", ["bad", "good"], chat_template=True, system_prompt="")
    assert _tokens(tok, short.encode(tok, "fun", 64)) == "SYSTEM END USER review : fun . it was END ASSISTANT"


def test_chat_demonstrations_are_earlier_turns(tok):
    fmt = PromptFormat(
        "review : {text} . it was {answer}", ["bad", "good"], chat_template=True, system_prompt="terse", demonstrations=DEMOS[:1]
    )
    assert _tokens(tok, fmt.encode(tok, "fun", 64)) == (
        "SYSTEM terse END USER review : great film . it was END ASSISTANT good END USER review : fun . it was END ASSISTANT"
    )


def test_answer_follows_the_prompt_as_written():
    assert PromptFormat("{text} It was {answer}", ["bad", "good"]).answer_form("good") == " good"
    assert PromptFormat("{text}\nSentiment:{answer}", ["bad", "good"]).answer_form("good") == "good"
    assert PromptFormat("{text} It was {answer}", ["bad", "good"], chat_template=True).answer_form("good") == "good"


def test_multi_token_label_word_is_refused_showing_its_pieces(tok):
    with pytest.raises(ValueError, match=r"label word 'not good' is 2 tokens \['not', 'good'\] for this tokenizer"):
        PromptFormat("{text} it was {answer}", ["bad", "not good"]).label_token_ids(tok)


def test_no_chat_template_is_a_clear_error():
    with pytest.raises(ValueError, match="this model's tokenizer has no chat template; set task.chat_template=false"):
        PromptFormat("{text} it was {answer}", ["bad", "good"], chat_template=True).encode(word_tokenizer(VOCABULARY), "fun", 32)


def test_template_alone_too_long_for_max_length(tok):
    fmt = PromptFormat("review : {text} . it was {answer}", ["bad", "good"], demonstrations=DEMOS)
    with pytest.raises(ValueError, match="the template and demonstrations .* alone need 21 tokens; max_length=21 leaves no room"):
        fmt.encode(tok, "fun", 21)
    assert len(fmt.encode(tok, "fun", 22)) == 22


def test_head_input_is_the_text_alone_after_a_start_token(tok):
    ids = encode_text(tok, "the film was fun", max_length=3, encoder=True)
    assert _tokens(tok, ids) == "<s> the film"
    assert _tokens(tok, encode_text(tok, "the film was fun", max_length=3, encoder=False)) == "the film was"
