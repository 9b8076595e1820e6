"""Training datasets: plan, chip (Apache Beam), split, store (Zarr + GeoParquet index), version."""
