"""Named STAC APIs (presets) and Microsoft Planetary Computer's URL signing.

``earth-search`` and ``planetary-computer`` stand for their public STAC APIs wherever a
catalog is taken. Planetary Computer's assets live in Azure Blob Storage and need a SAS
token per collection, fetched from its token endpoint and appended to each asset URL;
tokens are cached until shortly before they expire. The token request is the only network
call here and sits behind ``fetch_token`` so it can be replaced (tests, proxies).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pystac

from eoengine.errors import Unavailable

PRESETS = {
    "earth-search": "https://earth-search.aws.element84.com/v1",
    "planetary-computer": "https://planetarycomputer.microsoft.com/api/stac/v1",
}
PC_TOKEN_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token/{collection}"


def resolve(source: str) -> str:
    """The URL of a preset name, or ``source`` unchanged."""
    return PRESETS.get(source, source)


def is_planetary_computer(url: str) -> bool:
    """Whether ``url`` is Planetary Computer's STAC API."""
    return url.startswith("https://planetarycomputer.microsoft.com/")


def http_token(collection: str, timeout: float = 20.0) -> dict[str, Any]:
    """Planetary Computer's SAS token for ``collection`` ({"token": ..., "msft:expiry": ...})."""
    try:
        with urllib.request.urlopen(PC_TOKEN_URL.format(collection=collection), timeout=timeout) as r:
            data: dict[str, Any] = json.loads(r.read())
            return data
    except OSError as exc:
        raise Unavailable(f"cannot get a Planetary Computer token for '{collection}': {exc}",
                          "check the network; tokens come from planetarycomputer.microsoft.com") from None


class Signer:
    """Appends cached SAS tokens to Planetary Computer asset URLs."""

    def __init__(self, fetch_token: Callable[[str], dict[str, Any]] = http_token) -> None:
        self.fetch_token = fetch_token
        self.tokens: dict[str, tuple[str, float]] = {}

    def token(self, collection: str) -> str:
        """A valid token for ``collection`` (fetched when missing or within 5 minutes of expiry)."""
        cached = self.tokens.get(collection)
        if cached and cached[1] - time.time() > 300:
            return cached[0]
        data = self.fetch_token(collection)
        if "token" not in data:
            raise Unavailable(f"Planetary Computer answered without a token for '{collection}'", "try again later")
        expiry = data.get("msft:expiry")
        expires = datetime.fromisoformat(expiry.replace("Z", "+00:00")).timestamp() if expiry else time.time() + 3600
        self.tokens[collection] = (data["token"], expires)
        return str(data["token"])

    def sign(self, item: pystac.Item) -> pystac.Item:
        """A copy of ``item`` whose blob-storage asset URLs carry the collection's token."""
        signed = item.clone()
        token = None
        for asset in signed.assets.values():
            if ".blob.core.windows.net/" in asset.href and "?" not in asset.href:
                token = token or self.token(item.collection_id or "")
                asset.href = f"{asset.href}?{token}"
        return signed
