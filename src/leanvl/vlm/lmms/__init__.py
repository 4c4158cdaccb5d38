"""lmms-eval integration: the `leanvl` model adapter (lmms-eval plugin) and local VQA tasks built from leanvl data.

Registration: the entry point `lmms_eval.models: leanvl` (pyproject) when leanvl is pip-installed, or
`LMMS_EVAL_PLUGINS=leanvl.vlm.lmms` (lmms-eval's plugin variable) for a checkout on PYTHONPATH.
Tasks: `leanvl vlm lmms-task --out DIR` writes them; pass DIR to lmms-eval's `--include_path`.
"""
