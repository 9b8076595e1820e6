"""Reading scenes (bands on one grid) and writing Cloud-Optimized GeoTIFFs."""
