"""Sample-quality metrics (FID, KID, precision/recall, density/coverage) and the feature spaces they are measured in.

Importable without TFX: the evaluator component, the benchmarks and anyone scoring images use the same code.
"""
