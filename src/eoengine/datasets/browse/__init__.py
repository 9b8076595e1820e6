"""Browse a dataset folder: class balance, band statistics, footprints, chip previews, archive, leakage, STAC.

What the platform's dataset pages and routes show. Every function takes a dataset folder as
``eoengine dataset build`` or ``dataset import-tfrecord`` writes it (:mod:`eoengine.datasets.store`)
and reads only what it needs: chips one chunk file at a time (:class:`ChunkReader`), in batches
of a bounded size, and the manifest and chip index once per change of the folder (cached).
A folder that is not a dataset, an unknown chip or band, a malformed stretch or threshold
raise :class:`~eoengine.errors.NotFound` or :class:`~eoengine.errors.Invalid` naming the fix.

Results are frozen dataclasses with ``to_json()``, PNG bytes, or GeoJSON / STAC dicts.
Footprints and bounding boxes are in EPSG:4326; distances in metres, measured in the
dataset's projected CRS, or in a local UTM zone when its CRS is geographic.

Modules: ``folder`` (open and cache a dataset folder), ``summary`` (class balance, band
statistics, footprints), ``preview`` (chip and label PNGs), ``archive`` (tar streams),
``leakage`` (distances between splits), ``stac`` (the STAC Collection). Import from here.
"""

from eoengine.datasets.browse.archive import archive_chunks, write_archive
from eoengine.datasets.browse.folder import Dataset, Result, open_dataset
from eoengine.datasets.browse.leakage import Leakage, SplitDistance, leakage
from eoengine.datasets.browse.preview import (
    STRETCH_FIX,
    chip_preview_png,
    label_preview_png,
    parse_stretch,
    preview_channels,
)
from eoengine.datasets.browse.stac import CLASSIFICATION_EXTENSION, EO_EXTENSION, stac_collection
from eoengine.datasets.browse.summary import (
    SPLIT_COLORS,
    BandStats,
    ChannelSummary,
    ClassBalance,
    ClassPixels,
    SplitBalance,
    band_stats,
    class_balance,
    evenly,
    footprints,
)

__all__ = [
    "CLASSIFICATION_EXTENSION", "EO_EXTENSION", "SPLIT_COLORS", "STRETCH_FIX", "BandStats", "ChannelSummary",
    "ClassBalance", "ClassPixels", "Dataset", "Leakage", "Result", "SplitBalance", "SplitDistance", "archive_chunks",
    "band_stats", "chip_preview_png", "class_balance", "evenly", "footprints", "label_preview_png", "leakage",
    "open_dataset", "parse_stretch", "preview_channels", "stac_collection", "write_archive",
]
