"""Fast reads and writes of whole chips in a local zarr v3 array (one chunk per chip).

Going through zarr's async machinery costs about 1.5 ms per chunk, several times the cost
of reading the bytes (see ``benchmarks/bench_loader.py``). For the arrays eoengine writes —
zarr v3, regular grid with one chip per chunk, default chunk keys, ``bytes`` codec
(little-endian) optionally followed by ``zstd`` — this reader opens the chunk file named by
the zarr v3 spec and decodes it directly; writes encode the chunk and rename it into place,
so a chunk is never half-written. Any other layout (or a remote store) uses zarr.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

_DTYPES = {"float32": "<f4", "uint8": "u1", "int16": "<i2", "uint16": "<u2", "float64": "<f8"}


class ChunkReader:
    """Read ``array[i]`` (a whole chunk) of a local zarr v3 array; write it with ``put``."""

    def __init__(self, array_dir: Path, fallback: Any) -> None:
        self.fallback = fallback
        self.dir = Path(array_dir)
        self.fast = False
        meta_path = self.dir / "zarr.json"
        if not meta_path.exists():
            return
        meta = json.loads(meta_path.read_text())
        codecs = [c["name"] for c in meta.get("codecs", [])]
        chunk = meta["chunk_grid"]["configuration"]["chunk_shape"]
        key = meta["chunk_key_encoding"]
        self.fast = (
            meta.get("zarr_format") == 3
            and meta["data_type"] in _DTYPES
            and chunk[0] == 1
            and list(chunk[1:]) == list(meta["shape"][1:])
            and key["name"] == "default"
            and key.get("configuration", {}).get("separator", "/") == "/"
            and codecs in (["bytes"], ["bytes", "zstd"])
            and meta["codecs"][0].get("configuration", {}).get("endian", "little") == "little"
        )
        if self.fast:
            self.dtype = np.dtype(_DTYPES[meta["data_type"]])
            self.shape = tuple(chunk[1:])
            self.zstd = codecs[-1] == "zstd"
            fill = meta["fill_value"]
            self.fill = np.nan if fill == "NaN" else fill
            self.suffix = "/".join("0" for _ in self.shape)
            self._decompressor = zstandard.ZstdDecompressor() if self.zstd else None
            level = meta["codecs"][-1].get("configuration", {}).get("level", 0) if self.zstd else 0
            self._compressor = zstandard.ZstdCompressor(level=level) if self.zstd else None

    def put(self, i: int, value: np.ndarray) -> None:
        """Write ``array[i] = value`` (atomically on the fast path)."""
        if not self.fast:
            self.fallback[i] = value
            return
        data = np.ascontiguousarray(value, dtype=self.dtype).reshape(self.shape).tobytes()
        if self._compressor is not None:
            data = self._compressor.compress(data)
        path = self.dir / "c" / str(int(i)) / self.suffix
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def __getitem__(self, i: int) -> np.ndarray:
        if not self.fast:
            return np.asarray(self.fallback[i])
        path = self.dir / "c" / str(int(i)) / self.suffix
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return np.full(self.shape, self.fill, dtype=self.dtype)
        with f:
            if self._decompressor is None:
                out = np.empty(self.shape, dtype=self.dtype)
                f.readinto(memoryview(out).cast("B"))  # type: ignore[arg-type]  # one copy, from the page cache
                return out
            raw = self._decompressor.decompress(f.read(), max_output_size=int(np.prod(self.shape)) * self.dtype.itemsize)
        return np.frombuffer(raw, dtype=self.dtype).reshape(self.shape)
