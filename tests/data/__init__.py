"""Tests of leanvl.data."""
