"""Grading models: split metrics, baselines and HTML reports."""
