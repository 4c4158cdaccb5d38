"""Value-level CLI fuzz of the slow commands (training, checkpoint loading, benchmarks, recipes).

Every option of every slow command gets values that pass argparse's type check but are invalid: NaN, inf, -1, 0,
huge, out-of-range probabilities, nonexistent and unwritable paths, a directory where a file is expected, a file
or an empty directory where a checkpoint is expected, a run of the other kind. The cases are generated from the
parsers, so a new flag is fuzzed without editing this file.

The expensive steps (building a model, loading a checkpoint's model, training, timing an LLM, running recipe
cells) are replaced by a sentinel for the whole test. A case must then end in exit 2 with exactly one
`leanvl: error:` line *before* any of them, so validation provably comes first and every case costs milliseconds;
a refused case must also leave its output directory uncreated (nothing is written before the command line is
validated). A value that reaches the sentinel was accepted: it must be in ACCEPTED, with the reason it is
legitimate, and an ACCEPTED entry that is refused fails the test as well (the list cannot go stale)."""
import argparse
import functools
import os

import pytest

from leanvl.cli import build_parser
from tests.test_cli_fuzz import leaf_parsers, options, problem, run

HUGE = str(2**40)


class Reached(BaseException):
    """Raised by a stand-in for expensive work: the command accepted its arguments (BaseException, so leanvl's
    error boundary does not turn it into an error line)."""


EXPENSIVE = ["leanvl.vlm.io.build_vlm", "leanvl.vlm.io._spec_from_dir", "leanvl.pretrain.build_task",
             "leanvl.pretrain.train", "leanvl.models.export.load_encoder", "leanvl.vlm.latency.load_bench_llm",
             "leanvl.compare.run_training", "leanvl.sweep.run_cells", "leanvl.repro.runner.run_cells"]

SLOW = {  # command -> valid base arguments ({tmp}: a fresh directory per case; {vlm}, {run}: tiny real runs)
    ("pretrain",): ["--model", "leanvl_convnet", "--image-size", "32", "--batch-size", "1", "--steps", "1",
                    "--no-progress", "--out", "{tmp}/run"],
    ("export",): ["--ckpt", "{run}", "--out", "{tmp}/enc"],
    ("eval", "probe"): ["--ckpt", "{run}", "--n-train", "20", "--n-test", "20"],
    ("eval", "fewshot"): ["--ckpt", "{run}", "--k", "1", "--seeds", "1", "--n-train", "20", "--n-test", "20"],
    ("eval", "zeroshot"): ["--ckpt", "{run}", "--n-test", "20"],
    ("eval", "retrieval"): ["--ckpt", "{run}", "--n", "20"],
    ("vlm", "train"): ["--llm", "tiny", "--image-size", "32", "--tokens", "1", "--compressor", "avgpool",
                       "--steps", "1", "--batch-size", "1", "--data", "synthetic:4", "--no-progress",
                       "--out", "{tmp}/run"],
    ("vlm", "ask"): ["--ckpt", "{vlm}", "--image", "{image}", "what colour is the shape?"],
    ("vlm", "eval"): ["--ckpt", "{vlm}", "--limit", "2", "--batch-size", "2"],
    ("vlm", "export"): ["--ckpt", "{vlm}", "--out", "{tmp}/hf"],
    ("vlm", "bench"): ["--llm", "tiny", "--tokens", "1,4", "--repeats", "1", "--grid", "4", "--vision-dim", "8",
                       "--levels", "1", "--device", "cpu"],
    ("compare",): ["--out", "{tmp}/cmp", "--steps", "1", "--batch-size", "2", "--eval-train", "20",
                   "--eval-test", "20"],
    ("sweep",): ["--llm-sizes", "tiny,small", "--tokens", "1,4", "--steps", "1", "--batch-size", "2",
                 "--eval-limit", "2", "--out", "{tmp}/sweep"],
    ("repro",): ["quecc", "--scale", "tiny", "--out", "{tmp}/repro"],
}

PROBABILITY = ("fraction", "ratio", "prob", "dropout", "beta", "mask", "smoothing")  # floats that live in [0, 1]
CKPT_FLAGS = {"ckpt", "init", "lit_encoder", "resume"}
OUTPUT_DIRS = {"out", "data_cache"}
OUTPUT_FILES = {"json", "table", "plot"}

SHARD_REASON = ("opened as a shard: a file that is no tar is a data error, reported in one line at the first batch "
                "with its skip reasons (data accounting)")
# (command or "*", flag, value) -> why the value is legitimately accepted
ACCEPTED = {
    ("*", "--seed", "0"): "the default seed",
    ("*", "--steps", HUGE): "a long run is a valid request (--max-seconds, SIGTERM and checkpoints bound it)",
    ("*", "--warmup", "0"): "no warmup",
    ("*", "--warmup", HUGE): "warmup longer than the run: the lr ramps for the whole run",
    ("*", "--min-lr", "0"): "cosine to zero (the default)",
    ("*", "--lr", HUGE): "finite: the run diverges and --nan-policy reports it in one line",
    ("*", "--weight-decay", "0"): "no weight decay",
    ("*", "--weight-decay", HUGE): "finite: the run diverges and --nan-policy reports it in one line",
    ("*", "--eps", HUGE): "finite: AdamW with a huge epsilon is a (slow) SGD",
    ("*", "--grad-clip", "0"): "clipping off",
    ("*", "--grad-clip", HUGE): "a bound that never binds",
    ("*", "--cache-gb", HUGE): "a cap on the feature cache that is never reached: it stores what the run encodes",
    ("*", "--beta1", "0"): "AdamW without momentum",
    ("*", "--beta2", "0"): "AdamW with beta2 = 0 (RMS of the last gradient)",
    ("*", "--save-every", "0"): "checkpoint only at the end",
    ("*", "--save-every", HUGE): "checkpoint only at the end",
    ("*", "--keep", HUGE): "keep every checkpoint",
    ("*", "--log-every", HUGE): "log only the last step",
    ("*", "--num-workers", "0"): "load data in the main process",
    ("*", "--max-bad-fraction", "0"): "stop at the first bad sample",
    ("*", "--eval-every", "0"): "in-loop evaluation off",
    ("*", "--eval-every", HUGE): "evaluate only after the last step",
    ("*", "--max-seconds", "0"): "no time budget",
    ("*", "--max-seconds", HUGE): "a budget longer than the run never binds",
    ("*", "--samples-per-epoch", "0"): "one pass over the data",
    ("*", "--label-max-tokens", "0"): "whole caption",
    ("*", "--label-max-tokens", HUGE): "a cap longer than any caption",
    ("*", "--data-cache-gb", HUGE): "an unbounded cache",
    ("*", "--head-chunk", "0"): "fused head off",
    ("*", "--head-chunk", HUGE): "one chunk holding the whole batch",
    ("*", "--lit-unlock", "0"): "the default: the locked encoder stays fully locked",
    ("*", "--lora", "0"): "LoRA off",
    ("*", "--lora-alpha", "0"): "0 means 2 x rank",
    ("*", "--decode-tokens", "0"): "decode timing off",
    ("*", "--text-tokens", "0"): "a prompt of visual tokens only",
    ("*", "--bootstrap", "0"): "no bootstrap intervals",
    ("*", "--budget-gflops", "0"): "plan at the default budget",
    ("*", "--budget-gflops", HUGE): "plan for a large budget",
    ("*", "--lora-alpha", HUGE): "finite: the run diverges and --nan-policy reports it in one line",
    ("compare", "--seconds", HUGE): "a budget that never binds (the step cap of --budget seconds ends the runs)",
    ("*", "--pretrained", "{file}"): "read when the encoder is built: a file that is no weights file is one line "
                                     "(safetensors / refused-pickle errors at the boundary)",
    ("*", "--encoder-weights", "{file}"): "as --pretrained",
    **{(cmd, flag, "{file}"): SHARD_REASON for flag in ("--data", "--eval-data")
       for cmd in ("pretrain", "vlm train", "vlm eval", "compare", "sweep", "eval zeroshot", "eval retrieval")},
}


def fuzz_values(action: argparse.Action) -> list[str]:
    """Values of the argparse type of `action` that its command must refuse (or accept per ACCEPTED)."""
    if action.choices:
        return []  # refused by argparse itself (tests/test_cli_fuzz.py)
    if action.type is float:
        values = ["nan", "inf", "-inf", "-1", "0", HUGE]
        return values + (["1.5"] if any(w in action.dest for w in PROBABILITY) else [])
    if action.type is int:
        return ["-1", "0", HUGE]
    if action.dest in OUTPUT_DIRS:  # a missing directory is created; an existing file is not a directory
        return ["/proc/leanvl-fuzz/x", "{file}"]
    if action.dest in OUTPUT_FILES:  # an existing file is overwritten; a directory is not a file
        return ["/nonexistent/leanvl-fuzz", "/proc/leanvl-fuzz/x", "{emptydir}"]
    values = ["/nonexistent/leanvl-fuzz", "/proc/leanvl-fuzz/x", "{file}"]
    if action.dest in CKPT_FLAGS:
        values += ["{emptydir}", "{other}"]  # a directory that is no run, a run of the other kind
    elif action.dest == "image":
        values.append("{emptydir}")  # a directory where a file is expected
    return values


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny pre-training run, one tiny VLM run, an image, a text file and an empty directory."""
    from PIL import Image

    from leanvl.cli import main

    root = tmp_path_factory.mktemp("fuzz-slow")
    assert main(["pretrain", *SLOW[("pretrain",)][:-1], str(root / "pre")]) == 0
    vlm = [a.replace("{tmp}/run", str(root / "vlm")) for a in SLOW[("vlm", "train")]]
    assert main(["vlm", "train", *vlm]) == 0
    Image.new("RGB", (32, 32), "red").save(root / "image.png")
    (root / "notes.txt").write_text("not a checkpoint\n")
    (root / "empty").mkdir()
    return {"run": str(root / "pre"), "vlm": str(root / "vlm"), "image": str(root / "image.png"),
            "file": str(root / "notes.txt"), "emptydir": str(root / "empty")}


@pytest.fixture
def guarded(monkeypatch):
    """Replace every expensive step by `Reached`; build the parser once (argparse keeps no state between parses:
    the defaults go into a fresh namespace each time), not once per case."""
    def reached(*args, **kwargs):
        raise Reached()

    for target in EXPENSIVE:
        monkeypatch.setattr(target, reached)
    monkeypatch.setattr("leanvl.cli.build_parser", functools.lru_cache(maxsize=1)(build_parser))


def outcome(argv: list[str]) -> tuple[object, list[str]]:
    """(exit code or 'accepted', stderr lines) of one guarded call."""
    try:
        return run(argv)
    except Reached:
        return "accepted", []


def case_argv(path, flag, value, base, fill) -> list[str]:
    """The command line of one case: the base arguments with `flag` set to `value` (replacing a base value)."""
    base = [a.format(**fill) for a in base]
    if flag in base:
        i = base.index(flag)
        base = base[:i] + base[i + 2:]
    return [*path, *base, flag, value.format(**fill)]


def other_kind(path) -> str:
    return "vlm" if path[0] in ("pretrain", "export", "eval") else "run"


COMMANDS = sorted(SLOW)


def test_every_command_gets_value_level_fuzz():
    from tests.test_cli_fuzz import FAST

    leaves = {path for path, _ in leaf_parsers(build_parser())}
    assert set(SLOW) <= leaves
    assert leaves <= set(SLOW) | set(FAST), f"no value-level fuzz for {sorted(leaves - set(SLOW) - set(FAST))}"
    evals = {path for path in leaves if path[0] == "eval"}
    assert evals <= set(SLOW), f"eval commands without value-level fuzz: {evals - set(SLOW)}"


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_base_arguments_are_accepted(path, runs, guarded, tmp_path):
    fill = {**runs, "tmp": str(tmp_path)}
    code, lines = outcome([*path, *[a.format(**fill) for a in SLOW[path]]])
    assert code == "accepted", lines


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_invalid_values_fail_fast_in_one_line(path, runs, guarded, tmp_path):
    parser = dict(leaf_parsers(build_parser()))[path]
    problems, n, used = [], 0, set()
    for action in options(parser):
        flag = action.option_strings[-1]
        for value in fuzz_values(action):
            n += 1
            fill = {**runs, "tmp": str(tmp_path / f"case{n}"), "other": runs[other_kind(path)]}
            argv = case_argv(path, flag, value, SLOW[path], fill)
            code, lines = outcome(argv)
            allowed = ACCEPTED.get((" ".join(path), flag, value)) or ACCEPTED.get(("*", flag, value))
            if code == "accepted":
                used.add((flag, value))
                if not allowed:
                    problems.append(f"{argv}: accepted an invalid value (validate it, or add it to ACCEPTED "
                                    f"with the reason)")
            elif allowed:
                problems.append(f"{argv}: ACCEPTED says '{allowed}', but it gave exit {code}: {lines[-1:]}")
            else:
                problems.append(problem(argv, code, lines, must_fail=True))
                if os.path.exists(fill["tmp"]):
                    problems.append(f"{argv}: wrote {sorted(os.listdir(fill['tmp']))} before refusing")
    problems = [p for p in problems if p]
    print(f"{' '.join(path)}: {n} cases, {len(used)} accepted")
    assert n > 0 and not problems, f"{len(problems)} of {n} cases:\n" + "\n".join(problems)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message of a machine without CUDA")
@pytest.mark.parametrize("path", [("pretrain",), ("vlm", "train"), ("compare",), ("repro",)],
                         ids=["pretrain", "vlm train", "compare", "repro"])
def test_cuda_without_cuda_fails_before_the_model_is_built(path, runs, guarded, tmp_path):
    code, lines = outcome([*path, *[a.format(**runs, tmp=tmp_path) for a in SLOW[path]], "--device", "cuda"])
    assert code == 2 and len(lines) == 1 and "CUDA is not available" in lines[0], lines
    assert not os.listdir(tmp_path)
