"""CLI fuzz: invalid values for every flag of every command end in exit 2 with one line, or a correct run; never a
traceback. Parse-level values (type-wrong, bad choices, unwritable outputs) go to every command; value-level ones
(NaN, inf, negative, nonexistent paths) to the commands that finish in a moment, in-process with tiny settings."""
import argparse
import contextlib
import io

import pytest

from leanvl.cli import build_parser, main

UNWRITABLE = "/proc/leanvl-fuzz/out"  # /proc takes no new files, even for root
OUTPUTS = {"out", "json", "plot", "table"}
SKIP = {("pretrain", "--out")}  # (command, flag) whose value the base run needs as it is


def leaf_parsers(parser, path=()):
    """(command path, parser) of every runnable sub-command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, sub in subs[0].choices.items():
        yield from leaf_parsers(sub, path + (name,))


def options(parser):
    """The options taking a value (flags with nargs=0 and --help excluded)."""
    return [a for a in parser._actions if a.option_strings and a.nargs != 0
            and not isinstance(a, (argparse._HelpAction, argparse.BooleanOptionalAction))]


def parse_level_values(action):
    """Values argparse itself must refuse (exit 2, one line) before any work starts."""
    if action.dest in OUTPUTS:
        yield UNWRITABLE
    if action.choices:
        yield "no-such-choice"
    if action.type in (int, float):
        yield "not-a-number"


def value_level_values(action):
    """Values the command's own validation must refuse, or run correctly with."""
    if action.type is float:
        yield from ("nan", "inf", "-1")
    elif action.type is int:
        yield "-1"
    elif action.dest not in OUTPUTS and not action.choices:
        yield "/nonexistent/leanvl-fuzz"


FAST = {  # command -> base arguments of a run that takes well under a second ({tmp}: a fresh directory per case)
    ("pretrain",): ["--model", "leanvl_convnet", "--image-size", "32", "--batch-size", "1", "--steps", "1",
                    "--no-progress", "--data", "synthetic", "--out", "{tmp}/run"],
    ("data", "idf"): ["--data", "synthetic:4", "--out", "{tmp}/idf.safetensors"],
    ("data", "synth"): ["--n", "2", "--size", "32", "--out", "{tmp}/synth"],
    ("data", "vqa"): ["--n", "2", "--size", "32", "--out", "{tmp}/vqa"],
    ("data", "reshard"): ["--data", "{shards}", "--max-side", "16", "--out", "{tmp}/resharded"],
    ("data", "index"): ["--data", "{shards}", "--out", "{tmp}/idx"],
    ("scaling", "fit"): ["--reference", "reasoning", "--bootstrap", "0", "--starts", "1"],
    ("scaling", "plan"): ["--law", "{law}", "--text-tokens", "4", "--budget-gflops", "1000"],
    ("vlm", "lmms-task"): ["--limit", "2", "--size", "32", "--out", "{tmp}/tasks"],
}


def run(argv):
    """(exit code, stderr lines) of one in-process CLI call."""
    err = io.StringIO()

    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own one-line error
            code = exc.code
    return code, [ln for ln in err.getvalue().splitlines() if ln.strip()]


def problem(argv, code, lines, must_fail):
    """What is wrong with one outcome (None when it is one line + exit 2, or a clean run)."""
    text = "\n".join(lines)
    if "Traceback" in text or "internal error" in text:
        return f"{argv}: traceback\n{text[-800:]}"
    if code not in ((2,) if must_fail else (0, 2)):
        return f"{argv}: exit {code}\n{text[-400:]}"
    if code == 2 and len(lines) != 1:
        return f"{argv}: {len(lines)} lines on stderr\n{text[-400:]}"
    return None


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A directory of two tiny shards and a fitted law JSON, for the commands that read them."""
    root = tmp_path_factory.mktemp("fuzz-inputs")
    assert main(["data", "synth", "--n", "2", "--size", "32", "--out", str(root / "shards")]) == 0
    assert main(["scaling", "fit", "--reference", "reasoning", "--bootstrap", "0", "--starts", "1", "--json",
                 str(root / "law.json")]) == 0
    return {"shards": str(root / "shards"), "law": str(root / "law.json")}


COMMANDS = [path for path, _ in leaf_parsers(build_parser())]


def test_every_command_is_fuzzed():
    assert len(COMMANDS) >= 20 and {("vlm", "bench"), ("vlm", "export"), ("data", "reshard"),
                                    ("scaling", "plan")} <= set(COMMANDS)
    assert sum(len(options(p)) for _, p in leaf_parsers(build_parser())) > 200


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_invalid_values_are_one_line_or_a_correct_run(path, tmp_path, inputs):
    parser = dict(leaf_parsers(build_parser()))[path]
    problems, n = [], 0
    for action in options(parser):
        flag = action.option_strings[-1]
        cases = [(v, True) for v in parse_level_values(action)]
        if path in FAST and (path, flag) not in SKIP:
            cases += [(v, False) for v in value_level_values(action)]
        for value, must_fail in cases:
            n += 1
            base = [a.format(tmp=tmp_path / f"case{n}", **inputs) for a in FAST.get(path, [])]
            if flag in base:  # the fuzzed value replaces the base one
                i = base.index(flag)
                base = base[:i] + base[i + 2:]
            argv = [*path, *base, flag, value]
            problems.append(problem(argv, *run(argv), must_fail))
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
