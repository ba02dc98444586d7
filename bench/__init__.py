"""Benchmarks: ``python bench/match.py`` measures rule matching (see ``bench/match.py``)."""
