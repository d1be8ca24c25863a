"""Benchmarks for vcr_ext; ``python -m bench.replay`` compares replay speed with vcrpy and cassetter."""
