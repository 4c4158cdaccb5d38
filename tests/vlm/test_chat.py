"""Chat formatting: the label mask covers exactly the assistant answers; boundary problems raise, never zero loss."""
import pytest

from leanvl.errors import LeanvlError
from leanvl.vlm.chat import IGNORE_INDEX, IMAGE_TOKEN_ID, collate, encode_conversation, encode_prompt
from tests.vlm.helpers import tiny_tokenizer

CONV = [{"from": "human", "value": "<image>\nWhat color is the star?"}, {"from": "gpt", "value": "red"},
        {"from": "human", "value": "And the circle?"}, {"from": "gpt", "value": "dark blue"}]


def _labelled_runs(enc):
    """The labelled token runs, decoded."""
    runs, cur = [], []
    for tid, lab in zip(enc.input_ids, enc.labels):
        if lab != IGNORE_INDEX:
            assert lab == tid
            cur.append(tid)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return runs


def test_label_mask_covers_only_assistant_answers():
    tok = tiny_tokenizer()
    enc = encode_conversation(tok, CONV)
    assert enc.input_ids.count(IMAGE_TOKEN_ID) == 1
    runs = [tok.decode(r) for r in _labelled_runs(enc)]
    # each answer plus the template's end-of-turn (eos + newline), nothing of the prompts
    assert runs == ["red<|eos|>\n", "dark blue<|eos|>\n"]
    assert enc.question == "What color is the star?"
    prompt = tok.decode([t for t, lab in zip(enc.input_ids, enc.labels) if lab == IGNORE_INDEX and t >= 0])
    assert "What color is the star?" in prompt and "red" not in prompt and "blue" not in prompt


def test_generation_prompt_is_the_training_prefix():
    tok = tiny_tokenizer()
    enc = encode_conversation(tok, CONV[:2])
    prompt = encode_prompt(tok, "What color is the star?")
    first_label = next(i for i, lab in enumerate(enc.labels) if lab != IGNORE_INDEX)
    assert enc.input_ids[:first_label] == prompt


def test_collate_pads_right_and_masks():
    tok = tiny_tokenizer()
    a = encode_conversation(tok, CONV[:2])
    b = encode_conversation(tok, CONV)
    batch = collate([a, b], tok.pad_token_id)
    assert batch["input_ids"].shape == (2, len(b.input_ids))
    assert int(batch["attention_mask"][0].sum()) == len(a.input_ids)
    assert (batch["labels"][0, len(a.input_ids):] == IGNORE_INDEX).all()


@pytest.mark.parametrize("conv, match", [
    ([{"from": "human", "value": "no image here"}, {"from": "gpt", "value": "x"}], "0 <image> placeholders"),
    ([{"from": "human", "value": "<image><image> two"}, {"from": "gpt", "value": "x"}], "2 <image> placeholders"),
    ([{"from": "human", "value": "<image> only a question"}], "no assistant"),
    ([{"from": "robot", "value": "<image>"}, {"from": "gpt", "value": "x"}], "unknown conversation role"),
    ([{"value": "<image>"}], "needs 'from' and 'value'"),
])
def test_bad_conversations_raise(conv, match):
    with pytest.raises(LeanvlError, match=match):
        encode_conversation(tiny_tokenizer(), conv)


def test_token_straddling_the_answer_boundary_raises():
    """A BPE merge of the prompt's last char with the answer's first ("\\n" + "r") would corrupt the mask."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from leanvl.vlm.llm import _bytes_to_unicode, prepare_tokenizer

    vocab = {ch: b for b, ch in _bytes_to_unicode().items()}
    nl, r = _bytes_to_unicode()[10], "r"
    vocab[nl + r] = len(vocab)
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[(nl, r)]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tk.decoder = decoders.ByteLevel()
    tok = prepare_tokenizer(PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|eos|>", pad_token="<|pad|>"))
    with pytest.raises(LeanvlError, match="boundary mismatch"):
        encode_conversation(tok, CONV[:2])


def test_template_that_is_not_prefix_stable_raises():
    tok = tiny_tokenizer()
    # the generation prompt differs from how the rendered assistant turn starts
    tok.chat_template = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}ASSISTANT:{% endif %}")
    with pytest.raises(LeanvlError, match="prefix-stable"):
        encode_conversation(tok, CONV[:2])
