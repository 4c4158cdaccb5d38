"""LLaVA-style VLMs on few visual tokens: vision encoder -> compressor -> projector -> causal LM."""
