"""eoengine: geospatial machine learning from imagery and labels to trained models and maps.

The package is organised by pipeline stage (see ``DESIGN.md``): ``config`` describes a job,
``raster`` and ``labels`` read inputs, ``features`` derives spectral indices, ``datasets``
builds versioned training datasets with Apache Beam, ``models`` and ``training`` fit
networks tracked in MLflow, ``inference`` writes maps as Cloud-Optimized GeoTIFFs and
``evaluation`` grades models. The CLI (``eoengine.cli``) is a thin layer over these.
"""

__version__ = "0.1.0"
