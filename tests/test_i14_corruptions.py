"""Corruptions of raw chips (issue 14): known answers per corruption, and the invariants all of them keep.

Layouts are built directly (no dataset); one comes from a manifest made in the test. Chips hold
per date the bands then their indices, computed with the same function the dataset build uses, so a
corrupted chip's index channels can be checked against its corrupted bands.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from eoengine.datasets.schema import BandInfo, ChannelStats, ClassInfo, DatasetManifest, SplitStatistics
from eoengine.errors import EOError
from eoengine.features.indices import channel_names, compute_indices, stack_features
from eoengine.grading import _fields
from eoengine.grading.corruptions import (
    BLUR_PX,
    CLOUD_COVER,
    GAIN_DRIFT,
    MULTI_DATE_ONLY,
    NAMES,
    NOISE_STD,
    OFFSET_DRIFT,
    OPTIONS,
    ChipLayout,
    check,
    corrupt,
)

BANDS = ("blue", "green", "red", "nir", "swir16")
RANDOM = ("noise", "clouds", "band_dropout", "band_shift", "date_shift", "gain_offset")
"""Corruptions that draw from the seed (band_dropout below severity 5)."""


def make_layout(timesteps: int = 1, bands: tuple[str, ...] = BANDS[:4], indices: tuple[str, ...] = ("NDVI",),
                std: float | list[float] = 0.05, low: float = 0.0, high: float = 0.6,
                common: tuple[str | None, ...] | None = None) -> ChipLayout:
    channels = timesteps * (len(bands) + len(indices))
    stds = std if isinstance(std, list) else [std] * channels
    return ChipLayout(bands=bands, common_names=common if common is not None else bands, mean=(0.25,) * channels,
                      std=tuple(stds), min=(low,) * channels, max=(high,) * channels, timesteps=timesteps,
                      indices=indices)


def make_chips(layout: ChipLayout, raw: np.ndarray) -> np.ndarray:
    """Chips from raw bands ``(N, T * B, H, W)``: each date's indices appended as the dataset build does."""
    raw = raw.astype(np.float32)  # the bands as stored, so untouched dates' indices recompute exactly
    return np.stack([stack_features(chip, layout.timesteps, list(layout.indices), list(layout.bands),
                                    list(layout.common_names)) for chip in raw]).astype(np.float32)


def random_chips(layout: ChipLayout, n: int = 3, size: int = 24, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_chips(layout, rng.uniform(0.05, 0.5, (n, layout.timesteps * len(layout.bands), size, size)))


def bands_of(chips: np.ndarray, layout: ChipLayout, date: int = 0) -> np.ndarray:
    return chips[:, layout.band_channels()[date]]


def index_of(chips: np.ndarray, layout: ChipLayout, name: str, date: int = 0) -> np.ndarray:
    return chips[:, layout.index_channels()[date, layout.indices.index(name)]]


# -- layout --------------------------------------------------------------------------------------------------


def test_layout_positions_and_statistics() -> None:
    layout = make_layout(timesteps=3, bands=BANDS, indices=("NDVI", "NDWI"), std=[float(i) for i in range(21)])
    assert layout.per_date == 7 and layout.n_channels == 21
    assert layout.band_channels().tolist() == [[0, 1, 2, 3, 4], [7, 8, 9, 10, 11], [14, 15, 16, 17, 18]]
    assert layout.index_channels().tolist() == [[5, 6], [12, 13], [19, 20]]
    assert layout.band_stat("std")[1].tolist() == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert layout.band_spread()[0, 0] == pytest.approx(0.6)  # channel 0 has std 0: its range stands in
    assert layout.band_position("red") == 2 and layout.band_position(4) == 4
    with pytest.raises(EOError, match="no band 'tir'.*blue, green, red, nir, swir16"):
        layout.band_position("tir")


def test_layout_refuses_statistics_of_other_channels() -> None:
    with pytest.raises(EOError, match="std has 4 values but its chips have 5 channels"):
        ChipLayout(bands=BANDS[:4], common_names=BANDS[:4], mean=(0.0,) * 5, std=(1.0,) * 4, min=(0.0,) * 5,
                   max=(1.0,) * 5, indices=("NDVI",))


def tiny_manifest(timesteps: int, channels: list[str] | None = None) -> DatasetManifest:
    bands, indices = ["b1", "b2", "b3"], ["NDVI"]
    names = channels if channels is not None else channel_names(bands, indices, timesteps)
    k = timesteps * 4
    stats = ChannelStats(mean=[0.1 * i for i in range(k)], std=[1.0 + i for i in range(k)], min=[-1.0] * k,
                         max=[2.0] * k, count=[10.0] * k)
    return DatasetManifest(
        name="tiny", version="0" * 64, created="2024-01-01T00:00:00+00:00", config={}, inputs=[], bands=bands,
        band_specs=[BandInfo(name="b1", common_name="green"), BandInfo(name="b2", common_name="red"),
                    BandInfo(name="b3", common_name="nir")],
        indices=indices, index_constants={"L": 0.5}, channels=names, patch_size=16,
        classes=[ClassInfo(index=0, value=1, name="a")], class_frequencies={"train": [1]},
        statistics=SplitStatistics(train=stats), timesteps=timesteps, splits={"train": 1}, n_chips=1,
        n_array_rows=1, dropped={}, scenes=[])


def test_layout_from_manifest() -> None:
    layout = ChipLayout.from_manifest(tiny_manifest(timesteps=2))
    assert layout.bands == ("b1", "b2", "b3") and layout.common_names == ("green", "red", "nir")
    assert layout.timesteps == 2 and layout.indices == ("NDVI",) and dict(layout.index_constants) == {"L": 0.5}
    assert layout.band_channels().tolist() == [[0, 1, 2], [4, 5, 6]]
    assert layout.band_stat("std").tolist() == [[1.0, 2.0, 3.0], [5.0, 6.0, 7.0]]
    assert layout.band_stat("mean")[1, 0] == pytest.approx(0.4)
    # a manifest layout corrupts its chips and recomputes NDVI from b2 (red) and b3 (nir)
    raw = np.random.default_rng(0).uniform(0.1, 0.9, (2, 6, 8, 8))
    chips = make_chips(layout, raw)
    out = corrupt(chips, "band_dropout", 5, layout, band="b2")
    assert np.all(out[:, [1, 5]] == 0) and np.allclose(out[:, [3, 7]], 1.0)


def test_layout_from_manifest_with_wrong_channels() -> None:
    with pytest.raises(EOError, match="lists 3 channels"):
        ChipLayout.from_manifest(tiny_manifest(timesteps=1, channels=["b1", "b2", "b3"]))


# -- checks --------------------------------------------------------------------------------------------------


def test_constants_cover_every_corruption() -> None:
    assert set(OPTIONS) == set(NAMES) and MULTI_DATE_ONLY <= set(NAMES)
    assert OPTIONS["band_dropout"] == {"band", "mode"} and OPTIONS["noise"] == set()


@pytest.mark.parametrize(("name", "options", "timesteps", "message"), [
    ("fog", {}, 1, "unknown corruption 'fog'.*noise, blur, haze"),
    ("noise", {"band": "red"}, 1, "noise has no option 'band'.*none"),
    ("band_dropout", {"bands": "red"}, 1, "band_dropout has no option 'bands'.*band, mode"),
    ("band_shift", {"band": "swir16"}, 1, "band_shift: the model has no band 'swir16'.*blue, green, red, nir"),
    ("band_shift", {"band": 7}, 1, "no band 7"),
    ("band_dropout", {"mode": "nan"}, 1, "no mode 'nan'.*zero or nodata"),
    ("clouds", {"shadows": "yes"}, 1, "shadows must be true or false"),
    ("date_shift", {}, 1, "date_shift .* the model has one date.*remove date_shift from the suite"),
])
def test_check_names_the_problem_and_fix(name: str, options: dict[str, object], timesteps: int,
                                          message: str) -> None:
    layout = make_layout(timesteps)
    with pytest.raises(EOError, match=message):
        check(name, options, layout)
    with pytest.raises(EOError, match=message):
        corrupt(random_chips(layout, n=1, size=8), name, 1, layout, **options)


def test_check_accepts_what_applies() -> None:
    check("date_shift", {}, make_layout(timesteps=2))
    check("band_dropout", {"band": 3, "mode": "nodata"}, make_layout())
    check("clouds", {"shadows": False}, make_layout())


@pytest.mark.parametrize("severity", [0, 6, -1, 2.5, True, "3"])
def test_severity_must_be_one_to_five(severity: object) -> None:
    layout = make_layout()
    with pytest.raises(EOError, match="severity .* is not 1 to 5"):
        corrupt(random_chips(layout, n=1, size=8), "noise", severity, layout)  # type: ignore[arg-type]


def test_chips_must_fit_the_layout() -> None:
    layout = make_layout()
    with pytest.raises(EOError, match=r"chips of shape \(1, 4, 8, 8\) do not fit the layout's 5 channels"):
        corrupt(np.zeros((1, 4, 8, 8), np.float32), "noise", 1, layout)


# -- invariants of every corruption --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def multi() -> tuple[ChipLayout, np.ndarray]:
    """A 3-date, 5-band layout with 2 indices, and chips with nodata: a corner, a row of one band, a whole band."""
    layout = make_layout(timesteps=3, bands=BANDS, indices=("NDVI", "NDWI"))
    raw = np.random.default_rng(1).uniform(0.05, 0.5, (3, 15, 20, 20))
    raw[0, :, :3, :3] = np.nan
    raw[1, 7, 5] = np.nan
    raw[2, 12] = np.nan
    return layout, make_chips(layout, raw)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_every_corruption_keeps_the_invariants(multi: tuple[ChipLayout, np.ndarray], name: str,
                                               severity: int) -> None:
    layout, chips = multi
    before = chips.copy()
    out = corrupt(chips, name, severity, layout, seed=3)
    assert out.dtype == np.float32 and out.shape == chips.shape
    np.testing.assert_array_equal(chips, before)  # the input is untouched
    assert np.isnan(out[np.isnan(chips)]).all()
    assert not np.array_equal(np.nan_to_num(out, nan=-9), np.nan_to_num(chips, nan=-9))
    np.testing.assert_array_equal(out, corrupt(chips, name, severity, layout, seed=3))
    if name in RANDOM and not (name == "band_dropout" and severity == 5):
        assert not np.array_equal(np.nan_to_num(out, nan=-9),
                                  np.nan_to_num(corrupt(chips, name, severity, layout, seed=4), nan=-9))
    for date in range(layout.timesteps):  # indices are recomputed from the corrupted bands
        bands = np.moveaxis(out[:, layout.band_channels()[date]], 1, 0)
        expected = np.moveaxis(compute_indices(bands, list(layout.indices), list(layout.bands),
                                               list(layout.common_names)), 0, 1)
        expected[np.isnan(chips[:, layout.index_channels()[date]])] = np.nan
        np.testing.assert_allclose(out[:, layout.index_channels()[date]], expected, rtol=1e-5, atol=1e-6)


def test_nodata_inside_stays_nodata_for_spatial_corruptions(multi: tuple[ChipLayout, np.ndarray]) -> None:
    layout, chips = multi
    for name in ("blur", "resolution", "compression", "band_shift"):
        out = corrupt(chips, name, 5, layout)
        assert np.isfinite(out[0, :, 8:, 8:]).all()  # a corner's nodata spreads no further than a shift
        assert np.isnan(out[0, :, :3, :3]).all() and np.isnan(out[2, [16, 19]]).all()  # date 2's red and NDVI


# -- known answers -------------------------------------------------------------------------------------------


def _edge_shift(plane: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """A plane moved by whole pixels, the edge repeated (computed by padding, not by scipy)."""
    h, w = plane.shape
    padded = np.pad(plane, 4, mode="edge")
    return padded[4 - dy:4 - dy + h, 4 - dx:4 - dx + w]


def test_band_shift_by_one_pixel_moves_that_band_only() -> None:
    layout = make_layout()
    chips = random_chips(layout, n=6)
    out = corrupt(chips, "band_shift", 3, layout, seed=2, band="red")
    red, others = 2, [0, 1, 3]
    np.testing.assert_array_equal(out[:, others], chips[:, others])
    moves = []
    for i in range(len(chips)):
        found = [m for m in ((1, 0), (-1, 0), (0, 1), (0, -1)) if np.array_equal(out[i, red], _edge_shift(chips[i, red], *m))]
        assert len(found) == 1
        moves.append(found[0])
        ndvi = (chips[i, 3] - out[i, red]) / (chips[i, 3] + out[i, red])
        np.testing.assert_allclose(out[i, 4], ndvi, rtol=1e-5)
    assert len(set(moves)) > 1  # the direction is drawn per chip


def test_band_shift_sub_pixel_interpolates() -> None:
    layout = make_layout()
    chips = random_chips(layout, n=4)
    out = corrupt(chips, "band_shift", 1, layout, band=0)  # a quarter pixel
    for i in range(len(chips)):
        blends = [0.75 * chips[i, 0] + 0.25 * _edge_shift(chips[i, 0], *m) for m in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        assert sum(np.allclose(out[i, 0], b, atol=1e-6) for b in blends) == 1


def test_date_shift_moves_later_dates_not_the_first() -> None:
    layout = make_layout(timesteps=3)
    chips = random_chips(layout, n=4)
    out = corrupt(chips, "date_shift", 4, layout, seed=1)  # two pixels
    first = np.r_[layout.band_channels()[0], layout.index_channels()[0]]
    np.testing.assert_array_equal(out[:, first], chips[:, first])
    for date in (1, 2):
        channels = np.r_[layout.band_channels()[date], layout.index_channels()[date]]
        for i in range(len(chips)):
            matches = [m for m in ((2, 0), (-2, 0), (0, 2), (0, -2))
                       if all(np.allclose(out[i, c], _edge_shift(chips[i, c], *m), atol=1e-6) for c in channels)]
            assert len(matches) == 1  # every band of the date moved together, its NDVI with them


def test_band_dropout_zero_and_nodata() -> None:
    layout = make_layout(timesteps=2)
    chips = random_chips(layout)
    chips[0, 3, :2] = 0.0  # nir of the first date is 0 on two rows: NDVI 0/0 there
    zero = corrupt(chips, "band_dropout", 5, layout, band="red")
    red, nir, ndvi = layout.band_channels()[:, 2], layout.band_channels()[:, 3], layout.index_channels()[:, 0]
    assert np.all(zero[:, red] == 0)
    others = np.setdiff1d(layout.band_channels().ravel(), red)
    np.testing.assert_array_equal(zero[:, others], chips[:, others])
    positive = chips[:, nir] > 0
    np.testing.assert_allclose(zero[:, ndvi][positive], 1.0)
    assert np.isnan(zero[:, ndvi][~positive]).all() and (~positive).sum() == 2 * 24
    nodata = corrupt(chips, "band_dropout", 5, layout, band=2, mode="nodata")
    assert np.isnan(nodata[:, red]).all() and np.isnan(nodata[:, ndvi]).all()
    np.testing.assert_array_equal(nodata[:, others], chips[:, others])


def test_band_dropout_loses_a_share_of_rows() -> None:
    layout = make_layout()
    chips = random_chips(layout, size=20)
    out = corrupt(chips, "band_dropout", 2, layout, band="nir")
    for i in range(len(chips)):
        lost = np.all(out[i, 3] == 0, axis=1)
        assert lost.sum() == 8  # 0.4 of 20 rows
        np.testing.assert_array_equal(out[i, 3, ~lost], chips[i, 3, ~lost])
    assert not np.array_equal(np.all(out[0, 3] == 0, axis=1), np.all(out[1, 3] == 0, axis=1))


def test_noise_std_follows_the_train_std() -> None:
    stds = [0.01, 0.02, 0.04, 0.08, 0.0]
    layout = make_layout(std=stds)
    chips = make_chips(layout, np.full((2, 4, 128, 128), 0.3))
    for severity in (1, 5):
        diff = (corrupt(chips, "noise", severity, layout) - chips)[:, :4]
        measured = diff.std(axis=(0, 2, 3))
        np.testing.assert_allclose(measured, NOISE_STD[severity - 1] * np.array(stds[:4]), rtol=0.03)
        assert abs(diff.mean()) < 0.01 * NOISE_STD[severity - 1] * 0.08


def test_blur_keeps_a_constant_and_smooths_more_with_severity() -> None:
    layout = make_layout()
    flat = make_chips(layout, np.full((1, 4, 16, 16), 0.3))
    for severity in range(1, 6):
        np.testing.assert_allclose(corrupt(flat, "blur", severity, layout), flat, rtol=1e-6)
    chips = random_chips(layout, size=32)
    variances = [corrupt(chips, "blur", s, layout)[:, :4].var() for s in range(1, 6)]
    assert chips[:, :4].var() > variances[0] and np.all(np.diff(variances) < 0)
    expected = ndimage.gaussian_filter(chips[0, 1].astype(np.float64), BLUR_PX[2], mode="reflect")
    np.testing.assert_allclose(corrupt(chips, "blur", 3, layout)[0, 1], expected, rtol=1e-5)


def test_gain_offset_is_an_exact_affine_drift() -> None:
    stds = [0.01, 0.02, 0.03, 0.04, 0.0]
    layout = make_layout(std=stds)
    chips = random_chips(layout)
    for severity in (1, 4):
        out = corrupt(chips, "gain_offset", severity, layout, seed=7)
        for b in range(4):
            x, y = chips[:, b].ravel().astype(np.float64), out[:, b].ravel().astype(np.float64)
            gain, offset = np.polyfit(x, y, 1)
            assert abs(gain - 1) == pytest.approx(GAIN_DRIFT[severity - 1], rel=1e-4)
            assert abs(offset) == pytest.approx(OFFSET_DRIFT[severity - 1] * stds[b], rel=1e-3)
            np.testing.assert_allclose(y, gain * x + offset, atol=1e-6)
    signs = {tuple(np.sign(corrupt(chips, "gain_offset", 1, layout, seed=s)[0, :4, 0, 0] - chips[0, :4, 0, 0]))
             for s in range(6)}
    assert len(signs) > 1


def test_resolution_keeps_a_constant_and_loses_a_checkerboard() -> None:
    layout = make_layout()
    flat = make_chips(layout, np.full((1, 4, 24, 24), 0.3))
    for severity in range(1, 6):
        np.testing.assert_allclose(corrupt(flat, "resolution", severity, layout), flat, rtol=1e-6)
    board = (np.indices((24, 24)).sum(axis=0) % 2) * 0.4 + 0.05
    chips = make_chips(layout, np.broadcast_to(board, (1, 4, 24, 24)).copy())
    assert corrupt(chips, "resolution", 1, layout)[0, 0].std() < 0.3 * board.std()
    np.testing.assert_allclose(corrupt(chips, "resolution", 2, layout)[0, :4], 0.25, atol=1e-6)  # 2x2 means


def test_resample_matrices_average_areas() -> None:
    ramp = np.arange(12, dtype=np.float64)[None, :].repeat(12, axis=0)
    out = _fields.resample(ramp, 3.0)  # 4 coarse pixels, means 1, 4, 7, 10, back to 12 bilinearly
    np.testing.assert_allclose(out[0, [1, 4, 7, 10]], [1, 4, 7, 10])
    np.testing.assert_allclose(out[0, :2], [1, 1])  # clamped at the edge


def test_compression_grows_with_severity_and_spares_a_flat_image() -> None:
    layout = make_layout()
    flat = make_chips(layout, np.full((1, 4, 16, 16), 0.3))
    for severity in range(1, 6):
        assert np.abs(corrupt(flat, "compression", severity, layout) - flat).max() < 0.005 * 0.6
    rng = np.random.default_rng(0)
    texture = ndimage.gaussian_filter(rng.uniform(0.05, 0.5, (2, 4, 32, 32)), (0, 0, 1, 1))
    chips = make_chips(layout, texture)
    errors = [np.abs(corrupt(chips, "compression", s, layout) - chips)[:, :4].mean() for s in range(1, 6)]
    assert np.all(np.diff(errors) > 0), errors


def test_block_dct_quantization_known_answers() -> None:
    planes = np.random.default_rng(0).uniform(0, 255, (2, 13, 10))
    np.testing.assert_allclose(_fields.block_dct_quantize(planes, np.full((8, 8), 1e-9)), planes, atol=1e-6)
    coarse = _fields.block_dct_quantize(planes, np.full((8, 8), 1e9))
    np.testing.assert_allclose(coarse, 128.0)  # every coefficient rounds to 0: the level shift remains
    np.testing.assert_array_equal(_fields.jpeg_table(50), _fields.JPEG_LUMA)
    np.testing.assert_array_equal(_fields.jpeg_table(100), np.ones((8, 8)))
    assert _fields.jpeg_table(10)[0, 0] == 80  # 16 * 5000 / 10 / 100


def test_clouds_cover_grows_brighten_and_shadows_darken() -> None:
    layout = make_layout(timesteps=2)
    chips = random_chips(layout, n=4, size=64)
    bands = layout.band_channels().ravel()
    previous = 0.0
    for severity in range(1, 6):
        bright = corrupt(chips, "clouds", severity, layout, seed=1, shadows=False)
        changed = bright[:, bands] != chips[:, bands]
        cover = changed.mean(axis=(2, 3))
        np.testing.assert_allclose(cover, CLOUD_COVER[severity - 1], atol=0.005)
        assert cover.mean() > previous
        previous = cover.mean()
        assert np.all(bright[:, bands] >= chips[:, bands] - 1e-6)  # clouds only brighten (level 0.54 > 0.5)
        assert np.array_equal(changed[:, 0], changed[:, 3])  # one cloud field for every band of a date
        assert not np.array_equal(changed[:, 0], changed[:, len(BANDS[:4])])  # another for the next date
        shaded = corrupt(chips, "clouds", severity, layout, seed=1)
        assert np.all(shaded[:, bands] <= bright[:, bands] + 1e-6)
        darker = shaded[:, bands] < bright[:, bands] - 1e-3
        assert darker.mean() > 0.02
        assert (darker & ~changed).any()  # shadows fall on clear ground, beside their clouds
        assert not np.array_equal(darker[0, 0], darker[1, 0])


def test_haze_is_monotone_and_strongest_in_blue() -> None:
    layout = make_layout(common=("blue", "green", "red", "nir"))
    plane = np.random.default_rng(0).uniform(0.05, 0.5, (3, 1, 16, 16))
    chips = make_chips(layout, np.repeat(plane, 4, axis=1))  # the same values in every band
    means = [corrupt(chips, "haze", s, layout)[:, :4].mean(axis=(0, 2, 3)) for s in range(1, 6)]
    assert np.all(np.diff(means, axis=0) > 0)
    lift = corrupt(chips, "haze", 5, layout)[:, :4].mean(axis=(0, 2, 3)) - chips[:, :4].mean(axis=(0, 2, 3))
    assert lift[0] > lift[1] > lift[2] > lift[3] > 0
    level = 0.0 + 0.6 * 0.6
    np.testing.assert_allclose(corrupt(chips, "haze", 5, layout)[:, 0], 0.4 * chips[:, 0] + 0.6 * level, rtol=1e-5)
    unknown = make_layout(common=(None, None, "red", "nir"))
    np.testing.assert_allclose(corrupt(chips, "haze", 5, unknown)[:, 1], 0.4 * chips[:, 1] + 0.6 * level, rtol=1e-5)
