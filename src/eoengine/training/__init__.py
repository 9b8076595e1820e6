"""Training: Lightning models over dataset chips, losses, metrics, sweeps, classical models."""
