"""Labels: vector features with a class column, or label rasters, on a scene's grid."""
