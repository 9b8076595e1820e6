"""Grading: scores on a split, the baselines, and (see :mod:`eoengine.grading.grade`) graded report cards."""
