"""The `leanvl` command: one entry point, sub-commands contributed by each sub-package's `cli` module."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from leanvl.boundary import one_line, user_error_message
from leanvl.errors import LeanvlError

# Each module defines `register(subparsers)`; a sub-command sets `func(args) -> int | None` via set_defaults.
COMMAND_MODULES = [
    "leanvl.pretrain_cli",   # pretrain, export
    "leanvl.data.cli",       # data synth | idf | vqa
    "leanvl.eval.cli",       # eval probe | fewshot | zeroshot | retrieval
    "leanvl.compare",        # compare
    "leanvl.vlm.cli",        # vlm train | ask | eval | bench
    "leanvl.scaling.cli",    # scaling fit | plan
    "leanvl.sweep",          # sweep
    "leanvl.repro.cli",      # repro
]


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line with exit code 2 (argparse's own convention)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full `leanvl` parser with every available sub-command."""
    parser = _Parser(prog="leanvl", description="Lean vision-language models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line to stderr and return 2 (a preempted run: 75). Anything else is a
    bug: one line saying so, then the traceback (leanvl.boundary decides which is which)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed its one line: in-process callers get 2 like any user error
        if not exc.code:  # --help
            raise
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        code = args.func(args)
        sys.stdout.flush()  # a reader that left (`| head`) shows up here, inside the boundary
    except LeanvlError as exc:
        print(f"leanvl: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("leanvl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `leanvl ... | head`: the reader left; nothing more to say
        _silence_stdout()
        return 2
    except Exception as exc:  # noqa: BLE001
        message = user_error_message(exc)
        if message is None:
            print("leanvl: internal error — this is a bug in leanvl, please report it with the traceback below:",
                  file=sys.stderr)
            raise
        print(f"leanvl: error: {message}", file=sys.stderr)
        return 2
    return int(code or 0)


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
