"""Prediction: streaming, tiled, blended inference over scenes of any size, to COG."""
