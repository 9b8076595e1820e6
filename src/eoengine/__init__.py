"""eoengine: geospatial machine learning from imagery and labels to trained models and maps.

The package is organised by pipeline stage (see ``DESIGN.md``): ``config`` describes a job,
``raster`` and ``labels`` read inputs, ``features`` derives spectral indices, ``datasets``
builds versioned training datasets with Apache Beam, ``models`` and ``training`` fit
networks tracked in MLflow, ``inference`` writes maps as Cloud-Optimized GeoTIFFs and
``evaluation`` grades models. The CLI (``eoengine.cli``) is a thin layer over these.
"""

__version__ = "0.1.0"

import logging as _logging


class _BeamGcpNoise(_logging.Filter):
    """Drops Apache Beam's import-time warning about BigQuery clients.

    Beam logs it to the root logger whenever some Google Cloud package is installed (the
    ``ee`` extra brings google-cloud-storage) but its BigQuery client is not; eoengine never
    uses BigQuery, so the warning only confuses.
    """

    def filter(self, record: _logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


_logging.getLogger().addFilter(_BeamGcpNoise())
