"""One band through a colour map (``recipe=bands:NAME&colormap=...``), checked against the colours computed here.

The scene and server are :mod:`test_i13_tiles`'s: four bands constant per quadrant of one Web Mercator tile.
"""

from __future__ import annotations

import pytest
from browse_support import error_of
from platform_server import LiveServer
from rio_tiler.colormap import cmap
from test_i13_tiles import CENTRES, QUADRANTS, URL, _colours, _level, _tile
from test_i13_tiles import live as live  # the module's server


def test_one_band_through_a_colour_map_and_a_value_stretch(live: LiveServer) -> None:
    got = _colours(_tile(live, recipe="bands:nir", colormap="viridis", stretch="0,5000"))
    viridis = cmap.get("viridis")
    assert got == {q: (*viridis[_level(QUADRANTS["nir"][i], 0, 5000)][:3], 255)
                   for q, i in zip(CENTRES, range(4), strict=True)}
    spread = _colours(_tile(live, recipe="bands:nir", colormap="magma"))  # its 2..98 % percentiles: the ends
    magma = cmap.get("magma")
    assert spread["tl"] == (*magma[255][:3], 255) and spread["br"] == (*magma[0][:3], 255)
    grey = _colours(_tile(live, recipe="bands:nir", stretch="0,5000"))  # no colour map: grey, as before
    assert grey["tl"] == (*(_level(4000, 0, 5000),) * 3, 255)
    assert _tile(live, recipe="bands:nir", colormap="viridis", stretch="0,5000")[0, 0, 3] == 0  # its nodata pixel


@pytest.mark.parametrize(("params", "named", "hint"), [
    ({"recipe": "bands:nir,red,green", "colormap": "viridis"}, "colormap", "bands:NAME"),
    ({"recipe": "bands:nir", "colormap": "nope"}, "colormap", "viridis"),
    ({"recipe": "bands:nir", "colormap": "viridis", "stretch": "0,1;0,1"}, "stretch", "one entry"),
    ({"recipe": "bands:nir", "colormap": "viridis", "range": "0,1"}, "range", "stretch=LO,HI"),
    ({"recipe": "bands:nir", "range": "0,1"}, "range", "index:NAME"),
])
def test_bad_one_band_parameters_name_the_parameter(live: LiveServer, params: dict[str, str], named: str,
                                                   hint: str) -> None:
    with live.client() as c:
        body = error_of(c.get(URL, params=params), 422)
    assert named in body["error"] and hint in body["fix"], body
