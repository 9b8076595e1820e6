"""Imagery sourcing: catalogs of scenes (local folders as STAC), search, and a STAC API service."""
