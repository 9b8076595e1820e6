"""Derived features: spectral indices computed from named bands."""
