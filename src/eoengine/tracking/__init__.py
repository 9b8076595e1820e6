"""Experiment tracking with MLflow: runs, datasets as inputs, artifacts, model lookup."""
