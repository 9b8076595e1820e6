"""The model server's routers, one per concern: predict, vertex, tiles, health, metrics."""
