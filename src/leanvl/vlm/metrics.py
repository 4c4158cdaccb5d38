"""Per-question VQA scores and their 95% intervals.

- exact match: leanvl's normalised exact match (`normalize_answer`) against any reference answer.
- VQAv2 soft accuracy, as the official VQA evaluation script (`vqaEval.py`) computes it: both sides go through its
  answer normalisation (processPunctuation, then processDigitArticle: lower-case, number words -> digits, articles
  dropped, contractions restored); then for each of the k references, the accuracy against the other k - 1 is
  min(#matches / 3, 1), and the question's score is the mean over those k leave-one-out subsets (k = 10 in VQAv2).
  The official script normalises only the prediction, as VQAv2's references are pre-normalised; leanvl normalises
  the references too, so user json need not be.
- ANLS (DocVQA): 1 - normalised Levenshtein distance (lower-cased, whitespace-collapsed) to the closest reference,
  0 when that distance is >= 0.5.
- multiple choice: the prediction names an option by its text or by its letter (A, B, ...).
Intervals: Wilson score for proportions (exact match, multiple choice), seeded percentile bootstrap for soft scores.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

_NUM_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
              "seven": "7", "eight": "8", "nine": "9", "ten": "10"}


def normalize_answer(text: str) -> str:
    """Lower-case, strip punctuation and articles, number words -> digits; the first line only."""
    text = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    words = [_NUM_WORDS.get(w, w) for w in words if w not in ("a", "an", "the")]
    return " ".join(words)


def is_correct(prediction: str, answer: str) -> bool:
    """Normalised exact match."""
    return normalize_answer(prediction) == normalize_answer(answer)


def contains_answer(prediction: str, answer: str) -> bool:
    """Relaxed match: the normalised answer occurs as whole words in the normalised prediction (for models that
    answer in sentences, e.g. an instruction LLM without the image); reported beside, never instead of, exact match."""
    pred, ans = f" {normalize_answer(prediction)} ", f" {normalize_answer(answer)} "
    return ans.strip() != "" and ans in pred

ANLS_THRESHOLD = 0.5
BOOTSTRAP_RESAMPLES = 1000
_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
    "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
    "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've"}
_MANUAL_MAP = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
               "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = ("a", "an", "the")
_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: the official script's pattern
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
_LETTER = re.compile(r"^[(\[]?([A-Za-z])(?:[)\].:,]|\s|$)")


def vqa_normalize(text: str) -> str:
    """The official VQA answer normalisation: processPunctuation, then processDigitArticle."""
    text = (text or "").replace("\n", " ").replace("\t", " ").strip()
    out = text
    for p in _PUNCT:
        if (p + " " in text or " " + p in text) or _COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    out = _PERIOD_STRIP.sub("", out)
    words = [_MANUAL_MAP.get(w, w) for w in out.lower().split()]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def exact_match(prediction: str, references: Sequence[str]) -> bool:
    """Normalised exact match against any reference."""
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(r) for r in references)


def vqa_soft_accuracy(prediction: str, references: Sequence[str]) -> float:
    """Mean over the k leave-one-out subsets of the references of min(#matches / 3, 1) (official VQAv2)."""
    if len(references) < 2:
        raise ValueError("VQA soft accuracy needs at least 2 reference answers")
    pred = vqa_normalize(prediction)
    refs = [vqa_normalize(r) for r in references]
    matches = sum(r == pred for r in refs)
    # leaving out reference i removes one match exactly when reference i itself matches
    return float(np.mean([min((matches - (r == pred)) / 3.0, 1.0) for r in refs]))


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character)."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def anls(prediction: str, references: Sequence[str], threshold: float = ANLS_THRESHOLD) -> float:
    """Max over references of 1 - NL (NL = Levenshtein / longer length), 0 where NL >= threshold."""
    pred = " ".join((prediction or "").lower().split())
    best = 0.0
    for ref in references:
        ref = " ".join((ref or "").lower().split())
        longest = max(len(pred), len(ref))
        nl = levenshtein(pred, ref) / longest if longest else 0.0
        best = max(best, 1.0 - nl if nl < threshold else 0.0)
    return best


def option_index(text: str, options: Sequence[str]) -> int | None:
    """Which option `text` names: its text (normalised), else a leading letter A, B, ... (`B`, `(B)`, `B. cat`),
    else the one option whose text it contains; None when none or several fit."""
    text = ((text or "").strip().splitlines() or [""])[0].strip()
    norm = normalize_answer(text)
    for i, opt in enumerate(options):
        if norm and norm == normalize_answer(opt):
            return i
    m = _LETTER.match(text)
    if m and (m.group(1).isupper() or len(text.strip("()[]. ")) == 1):
        i = ord(m.group(1).upper()) - ord("A")
        if i < len(options):
            return i
    hits = [i for i, opt in enumerate(options) if contains_answer(text, opt)]
    return hits[0] if len(hits) == 1 else None


def multiple_choice_correct(prediction: str, answer: str, options: Sequence[str]) -> bool:
    """The prediction names the same option as the reference answer (each by letter or text)."""
    gold = option_index(answer, options)
    if gold is None:
        raise ValueError(f"answer {answer!r} names none of the options {list(options)}")
    return option_index(prediction, options) == gold


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (scipy's binomtest)."""
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def bootstrap_interval(scores: Sequence[float], *, level: float = 0.95, n_resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean score (scipy.stats.bootstrap, seeded)."""
    from scipy.stats import bootstrap

    x = np.asarray(scores, dtype=float)
    if x.size < 2 or np.all(x == x[0]):
        return float(x.mean()), float(x.mean())
    ci = bootstrap((x,), np.mean, n_resamples=n_resamples, confidence_level=level, method="percentile",
                   rng=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)
