"""`leanvl repro NAME`: the papers' findings as fixed, seeded, resumable recipes (quecc, ocr-tokens, scaling,
superclass-vs-clip), each writing DIR/result.json, DIR/table.md and DIR/plot.png."""
