"""Labels: vector features with a class column, or label rasters, on a scene's grid."""

IGNORE = 255
"""Label value for unlabelled or nodata pixels; losses and metrics skip it."""
