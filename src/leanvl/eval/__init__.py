"""Evaluations: linear probe, few-shot, zero-shot, retrieval."""
