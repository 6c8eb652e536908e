"""Evaluation: score maps -> boxes and masks -> streaming metric accumulators."""
