"""The import graph stays a layered DAG: no cycles, lower layers never reach up, every module imports alone."""
import ast
import os
import subprocess
import sys

import leanvl

PKG = os.path.dirname(leanvl.__file__)
LOWER = ("leanvl.objectives", "leanvl.models", "leanvl.data", "leanvl.text", "leanvl.scaling")
UPPER = ("leanvl.train", "leanvl.vlm")
# Top-level modules that are shared utilities (every layer may use them); the other top-level modules are apps.
UTILITIES = {"leanvl", "leanvl.errors", "leanvl.registry", "leanvl.cliutil", "leanvl.paths", "leanvl.labels",
             "leanvl.objective_options"}


def _modules() -> dict[str, str]:
    found = {}
    for folder, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), os.path.dirname(PKG))[:-3].replace(os.sep, ".")
                found[rel.removesuffix(".__init__")] = os.path.join(folder, f)
    return found


MODULES = _modules()
APPS = {m for m, path in MODULES.items()
        if m.count(".") == 1 and not path.endswith("__init__.py") and m not in UTILITIES}


def _imports(path: str) -> set[str]:
    """leanvl modules imported anywhere in the file (function-level imports included)."""
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}
            out |= subs
            if len(subs) < len(node.names):
                out.add(node.module)
    return {m for m in out if m in MODULES}


GRAPH = {m: _imports(p) - {m} for m, p in MODULES.items()}


def _under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_lower_layers_never_import_train_vlm_or_apps():
    bad = [f"{m} -> {d}" for m, deps in GRAPH.items() if _under(m, LOWER)
           for d in deps if _under(d, UPPER) or d in APPS]
    assert not bad, bad
    assert APPS >= {"leanvl.cli", "leanvl.pretrain", "leanvl.sweep", "leanvl.compare"} and "leanvl.models" not in APPS


def test_no_import_cycles():
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for d in sorted(GRAPH[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(d):] + [d]))
            if d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])


# Third-party libraries are imported once, then each leanvl module is imported alone in a forked child that has
# no leanvl module loaded yet (a fresh interpreter per module would cost ~1-2 s each; this is ~15 s CPU for ~85).
_ALONE = r"""
import importlib, os, sys, traceback
import numpy, torch, timm, open_clip, transformers  # noqa: F401
assert not [m for m in sys.modules if m == "leanvl" or m.startswith("leanvl.")]
failed = []
for name in sys.argv[1:]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            importlib.import_module(name)
            os._exit(0)
        except BaseException:
            os.write(w, traceback.format_exc().strip().splitlines()[-1].encode()[:500])
            os._exit(1)
    os.close(w)
    message = os.read(r, 1000).decode()
    os.close(r)
    if os.waitpid(pid, 0)[1] != 0:
        failed.append(f"{name}: {message}")
print("\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_alone():
    # leanvl.vlm.hf.remote holds templates of an export's modelling code: they import the vendored copies that
    # `leanvl vlm export` writes beside them, so they only import inside an export (tests/vlm/hf checks that).
    names = sorted(m for m in MODULES if not m.endswith("__main__") and not _under(m, ("leanvl.vlm.hf.remote",)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": os.path.dirname(PKG)}
    procs = [subprocess.Popen([sys.executable, "-c", _ALONE, *names[i::2]], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]  # 2 cores
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err[-2000:]
