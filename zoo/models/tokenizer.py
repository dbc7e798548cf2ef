"""A word-level tokenizer over a fixed vocabulary, built in-process (no download)."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL = ["<pad>", "<unk>", "<s>", "</s>"]


def word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    """Whitespace/punctuation-split word tokenizer: one id per word, specials first."""
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(SPECIAL + list(words)))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )
    tok.padding_side = "left"
    return tok
