"""Imagery sourcing: catalogs of scenes (local folders as STAC), search, fetch, providers and Earth Engine exports."""
