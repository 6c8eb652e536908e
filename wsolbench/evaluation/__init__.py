"""Evaluation: maps -> boxes and masks -> metric accumulators (one protocol), the
evaluator over a model, the scoring pool, and the score-map exchange format."""
