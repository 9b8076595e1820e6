"""Checksums of files and canonical hashes of JSON-like data (dataset versions)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, read in chunks (never whole in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def input_checksums(paths: list[str]) -> list[dict[str, str]]:
    """Checksums of input files, including a Shapefile's sidecar files; sorted by path."""
    seen: dict[str, str] = {}
    for p in paths:
        if "://" in p:
            seen[p] = "remote"
            continue
        files = [Path(p)]
        if Path(p).suffix.lower() == ".shp":
            files += [Path(p).with_suffix(s) for s in _SIDECARS if Path(p).with_suffix(s).exists()]
        for f in files:
            seen.setdefault(str(f), file_sha256(f))
    return [{"path": k, "sha256": v} for k, v in sorted(seen.items())]


def canonical_hash(data: Any) -> str:
    """SHA-256 of the canonical JSON of ``data`` (sorted keys, no whitespace)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
