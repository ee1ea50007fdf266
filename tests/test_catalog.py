"""SourceCatalog: measurements per source, tables and files."""

import csv
import sys

import numpy as np
import pytest
from conftest import gaussian_image

from skimgcluster import AstroLinkClusterer, DegenerateDataWarning, LuminositySampler, segment
from skimgcluster._catalog import SourceCatalog
from skimgcluster._segment import Segmentation
from skimgcluster.datasets import make_field

BASE_COLUMNS = [
    "label", "cluster_id", "parent_id", "significance", "n_samples", "area",
    "x_centroid", "y_centroid",
    "bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax",
    "semimajor_axis", "semiminor_axis", "orientation", "eccentricity",
]  # fmt: skip


def hand_made_segmentation(image, label_image, mask=None):
    """A Segmentation of a given label image, with no sky subtracted (background=None)."""
    sampler = LuminositySampler(background=None).fit(image)
    maps = sampler.analyse(image, mask=mask)
    n_bands = 1 if image.ndim == 2 else image.shape[2]
    points = np.empty((0, 2 + n_bands))
    return Segmentation(label_image, points, sampler, AstroLinkClusterer(), maps)


@pytest.fixture
def small():
    """Two bands, labels 1, 5 and 9 with values chosen for hand computation."""
    image = np.zeros((10, 12, 2))
    image[2:4, 4:7, 0] = 1.0  # label 1: a 2 x 3 block, luminosity (1 + 3) / 2 = 2
    image[2:4, 4:7, 1] = 3.0
    image[2, 7] = 100.0  # in label 1, but masked
    image[7, 1] = 1.0  # label 5: luminosity 1, 3 and -2 (no weight, but flux)
    image[7, 3] = 3.0
    image[8, 1] = -2.0
    image[9, 11] = -1.0  # label 9: nothing positive
    mask = np.zeros((10, 12), dtype=bool)
    mask[2, 7] = True
    labels = np.zeros((10, 12), dtype=np.int32)
    labels[2:4, 4:8] = 1
    labels[7, 1] = labels[7, 3] = labels[8, 1] = 5
    labels[9, 11] = 9
    return image, labels, mask


def test_values_by_hand(small):
    image, labels, mask = small
    cat = hand_made_segmentation(image, labels, mask).catalog()
    assert len(cat) == 3 and cat.n_bands == 2
    assert cat.columns == BASE_COLUMNS + ["flux_0", "flux_1"]
    np.testing.assert_array_equal(cat.label, [1, 5, 9])
    np.testing.assert_array_equal(cat.area, [8, 3, 1])  # every labelled pixel counts
    np.testing.assert_array_equal(cat.bbox_xmin, [4, 1, 11])
    np.testing.assert_array_equal(cat.bbox_xmax, [7, 3, 11])
    np.testing.assert_array_equal(cat.bbox_ymin, [2, 7, 9])
    np.testing.assert_array_equal(cat.bbox_ymax, [3, 8, 9])
    # Flux: band sums over the segment; the masked pixel is left out, negatives count.
    np.testing.assert_allclose(cat.flux, [[6.0, 18.0], [2.0, 2.0], [-1.0, -1.0]])
    # Centroid of label 1: the uniform block, x = 4..6, y = 2..3.
    assert cat.x_centroid[0] == pytest.approx(5.0) and cat.y_centroid[0] == pytest.approx(2.5)
    # Label 5: weights 1 at x=1 and 3 at x=3 on row 7; the -2 pixel has no weight.
    assert cat.x_centroid[1] == pytest.approx(2.5) and cat.y_centroid[1] == pytest.approx(7.0)
    # Shape of label 1: var_x = 2/3, var_y = 1/4, no covariance.
    assert cat.semimajor_axis[0] == pytest.approx(np.sqrt(2 / 3))
    assert cat.semiminor_axis[0] == pytest.approx(0.5)
    assert cat.orientation[0] == pytest.approx(0.0)
    assert cat.eccentricity[0] == pytest.approx(np.sqrt(1 - 0.25 / (2 / 3)))
    # Label 5 is one pixel thin (var_y = 0): 1/12 is added to both variances.
    assert cat.semimajor_axis[1] == pytest.approx(np.sqrt(0.75 + 1 / 12))
    assert cat.semiminor_axis[1] == pytest.approx(np.sqrt(1 / 12))
    # Label 9 has no positive luminosity: no centroid, no shape.
    for name in ["x_centroid", "y_centroid", "semimajor_axis", "orientation", "eccentricity"]:
        assert np.isnan(getattr(cat, name)[2]), name
    # No hierarchy behind hand-made labels.
    assert cat.cluster_id.tolist() == ["", "", ""] and np.isnan(cat.significance).all()
    np.testing.assert_array_equal(cat.n_samples, [0, 0, 0])


def rotated_gaussian(angle_deg, shape=(64, 64), sigmas=(6.0, 2.0)):
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    t = np.deg2rad(angle_deg)
    dx, dy = xx - 30.0, yy - 33.0
    u = dx * np.cos(t) + dy * np.sin(t)  # along the major axis, in (x, y) = (column, row)
    v = -dx * np.sin(t) + dy * np.cos(t)
    return 100.0 * np.exp(-0.5 * ((u / sigmas[0]) ** 2 + (v / sigmas[1]) ** 2))


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 120.0])
def test_shape_of_a_rotated_gaussian(angle):
    image = rotated_gaussian(angle)
    labels = (image > 1e-6).astype(np.int32)  # practically the whole profile
    cat = hand_made_segmentation(image, labels).catalog()
    # maps.luminosity is float32
    assert cat.x_centroid[0] == pytest.approx(30.0, abs=1e-4)
    assert cat.y_centroid[0] == pytest.approx(33.0, abs=1e-4)
    assert cat.semimajor_axis[0] == pytest.approx(6.0, rel=1e-3)
    assert cat.semiminor_axis[0] == pytest.approx(2.0, rel=1e-3)
    # Counter-clockwise from x with y up; photutils 3 reports it in [0, 360).
    expected = angle if angle <= 90 else angle + 180
    assert cat.orientation[0] == pytest.approx(expected % 360, abs=1e-3)


def test_flux_subtracts_each_bands_sky():
    rng = np.random.default_rng(4)
    shape = (96, 96)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = np.zeros(shape + (3,))
    for (y0, x0), colour in [((30, 30), (1.0, 0.5, 0.2)), ((65, 62), (0.2, 0.6, 1.0))]:
        profile = 200.0 * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * 3.0**2))
        truth += profile[:, :, None] * np.asarray(colour)
    skies = np.array([5.0, 20.0, 50.0])
    image = truth + skies + rng.normal(0.0, 0.2, shape + (3,))
    result = segment(image, random_state=0)
    assert result.n_sources == 2
    cat = result.catalog()
    for i, label in enumerate(cat.label):
        inside = result.label_image == label
        expected = truth[inside].sum(axis=0)  # noise-free source flux in the segment
        np.testing.assert_allclose(cat.flux[i], expected, rtol=0.01)


def test_hierarchy_and_samples_match_the_segmentation():
    image, _, _ = make_field((128, 128), 12, random_state=3)
    result = segment(image, random_state=0)
    cat = result.catalog()
    assert len(cat) == result.n_sources > 3
    np.testing.assert_array_equal(cat.label, np.unique(result.label_image[result.label_image > 0]))
    assert result.isolated.any()  # this field has a source AstroLink cannot judge alone
    for i, label in enumerate(cat.label):
        assert cat.significance[i] == result.source_significance[label - 1]
        if result.isolated[label - 1]:  # an isolated source: no cluster, its S/N
            assert label - 1 not in result.cluster_labels
            assert cat.cluster_id[i] == cat.parent_id[i] == ""
            assert cat.significance[i] >= 5.0
            assert cat.n_samples[i] > 0
            continue
        [j] = np.flatnonzero(result.cluster_labels == label - 1)
        assert cat.cluster_id[i] == result.cluster_ids[j]
        parent = result.parents[j]
        assert cat.parent_id[i] == (result.cluster_ids[parent] if parent >= 0 else "")
        assert cat.significance[i] == result.significances[j]
        assert cat.n_samples[i] == np.count_nonzero(result.labels == label - 1)
        assert cat.area[i] == np.count_nonzero(result.label_image == label)
    # Nested sources: their parent is in the hierarchy.
    nested = cat.parent_id != ""
    assert all(pid in set(result.cluster_ids.tolist()) for pid in cat.parent_id[nested])


def test_matches_photutils():
    # photutils is in the test extra: these interoperation tests run, never skip.
    import photutils.segmentation as photutils_segmentation

    image, _, _ = make_field((160, 160), 20, random_state=5)
    result = segment(image, random_state=0)
    cat = result.catalog()
    theirs = photutils_segmentation.SourceCatalog(
        result.maps.luminosity.astype(np.float64), cat.to_segmentation_image()
    )
    np.testing.assert_array_equal(theirs.label, cat.label)
    for name in ["area", "bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax"]:
        np.testing.assert_array_equal(np.asarray(getattr(theirs, name), dtype=float),
                                      getattr(cat, name), err_msg=name)  # fmt: skip
    for name in ["x_centroid", "y_centroid", "semimajor_axis", "semiminor_axis", "eccentricity"]:
        value = getattr(theirs, name)
        np.testing.assert_allclose(getattr(value, "value", value), getattr(cat, name),
                                   rtol=1e-9, atol=1e-9, err_msg=name)  # fmt: skip
    diff = np.abs(theirs.orientation.value - cat.orientation)
    np.testing.assert_allclose(np.minimum(diff, 360 - diff), 0, atol=1e-7)


def test_empty_segmentation_has_columns_and_no_rows(tmp_path):
    with pytest.warns(DegenerateDataWarning):
        result = segment(np.zeros((32, 40, 3)), random_state=0)
    cat = result.catalog()
    assert len(cat) == 0 and cat.n_bands == 3
    assert cat.columns == BASE_COLUMNS + ["flux_0", "flux_1", "flux_2"]
    assert cat.flux.shape == (0, 3)
    assert all(v.shape == (0,) for v in cat.to_dict().values())
    cat.write(tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text() == ",".join(cat.columns) + "\n"
    pytest.importorskip("astropy")
    table = cat.to_table()
    assert len(table) == 0 and table.colnames == cat.columns
    cat.write(tmp_path / "c.ecsv")
    cat.write(tmp_path / "c.fits")


def fitted_catalog_and_wcs():
    pytest.importorskip("astropy")
    from astropy.wcs import WCS

    image = gaussian_image((64, 64), [(20, 18, 60.0, 2.5), (44, 46, 60.0, 2.5)], sky=10.0)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.1, 2.2]
    w.wcs.cdelt = [-2.0e-4, 2.0e-4]
    w.wcs.crpix = [32.5, 32.5]
    return segment(image, random_state=0), w


def test_sky_positions_from_wcs():
    result, w = fitted_catalog_and_wcs()
    cat = result.catalog(wcs=w)
    assert len(cat) == 2
    assert cat.columns[:10] == BASE_COLUMNS[:8] + ["ra", "dec"]
    sky = w.pixel_to_world(cat.x_centroid, cat.y_centroid)
    np.testing.assert_allclose(cat.ra, sky.ra.deg, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cat.dec, sky.dec.deg, rtol=0, atol=1e-12)
    assert cat.sky_centroid.separation(sky).max().deg < 1e-12
    # A header works as well as a WCS.
    from_header = SourceCatalog(result, wcs=w.to_header())
    np.testing.assert_array_equal(from_header.ra, cat.ra)
    table = cat.to_table()
    assert str(table["ra"].unit) == "deg" and str(table["x_centroid"].unit) == "pix"


def test_galactic_wcs_gives_icrs_ra_dec():
    result, w = fitted_catalog_and_wcs()
    w.wcs.ctype = ["GLON-TAN", "GLAT-TAN"]
    cat = result.catalog(wcs=w)
    sky = w.pixel_to_world(cat.x_centroid, cat.y_centroid).icrs
    np.testing.assert_allclose(cat.ra, sky.ra.deg, rtol=0, atol=1e-10)
    np.testing.assert_allclose(cat.dec, sky.dec.deg, rtol=0, atol=1e-10)


def test_without_wcs_ra_dec_are_absent(small):
    image, labels, mask = small
    cat = hand_made_segmentation(image, labels, mask).catalog()
    assert "ra" not in cat.columns and cat.wcs is None
    with pytest.raises(AttributeError, match="built without a WCS; pass wcs="):
        _ = cat.ra
    with pytest.raises(AttributeError, match="without a WCS"):
        _ = cat.sky_centroid
    assert not hasattr(cat, "dec")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = cat.nope


def test_bad_arguments():
    result, w = fitted_catalog_and_wcs()
    with pytest.raises(TypeError, match="segmentation must be a Segmentation"):
        SourceCatalog(result.label_image)
    with pytest.raises(TypeError, match="wcs must be an astropy.wcs.WCS"):
        result.catalog(wcs="RA---TAN")
    from astropy.wcs import WCS

    linear = WCS(naxis=2)
    with pytest.raises(ValueError, match="wcs must have celestial axes"):
        result.catalog(wcs=linear)


def test_nan_centroid_gives_nan_sky_position(small):
    pytest.importorskip("astropy")
    from astropy.wcs import WCS

    image, labels, mask = small
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [10.0, -30.0]
    w.wcs.cdelt = [-1e-3, 1e-3]
    cat = hand_made_segmentation(image, labels, mask).catalog(wcs=w)
    assert np.isfinite(cat.ra[:2]).all() and np.isnan(cat.ra[2]) and np.isnan(cat.dec[2])


def test_csv_round_trip(tmp_path, small):
    image, labels, mask = small
    cat = hand_made_segmentation(image, labels, mask).catalog()
    cat.write(tmp_path / "c.csv")
    with open(tmp_path / "c.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == cat.columns and len(rows) == 3
    assert [int(r["label"]) for r in rows] == [1, 5, 9]
    assert [r["cluster_id"] for r in rows] == ["", "", ""]
    assert float(rows[1]["x_centroid"]) == cat.x_centroid[1]  # full precision
    assert rows[2]["x_centroid"] == "nan"
    assert float(rows[0]["flux_1"]) == 18.0
    assert [p.name for p in tmp_path.iterdir()] == ["c.csv"]  # no temporary left


def test_csv_is_written_without_astropy(tmp_path, small, monkeypatch):
    image, labels, mask = small
    cat = hand_made_segmentation(image, labels, mask).catalog()
    for name in [m for m in sys.modules if m == "astropy" or m.startswith("astropy.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "astropy", None)
    cat.write(tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text().startswith("label,cluster_id,")
    message = r'pip install "skimgcluster\[astro\]"'
    with pytest.raises(ImportError, match=message):
        cat.to_table()
    with pytest.raises(ImportError, match=message):
        cat.write(tmp_path / "c.ecsv")
    with pytest.raises(ImportError, match=message):
        cat.write(tmp_path / "c.fits")
    assert not (tmp_path / "c.ecsv").exists() and not (tmp_path / "c.fits").exists()


@pytest.mark.parametrize("name", ["c.ecsv", "c.fits"])
def test_astropy_formats_round_trip(tmp_path, name):
    pytest.importorskip("astropy")
    from astropy.table import QTable

    result, w = fitted_catalog_and_wcs()
    cat = result.catalog(wcs=w)
    cat.write(tmp_path / name)
    back = QTable.read(tmp_path / name)
    assert back.colnames == cat.columns and len(back) == len(cat)
    for column in cat.columns:
        mine = getattr(cat, column) if not column.startswith("flux_") else None
        if mine is None:
            mine = cat.flux[:, int(column[5:])]
        values = back[column]
        values = getattr(values, "value", values)
        if column in ("cluster_id", "parent_id"):
            # ECSV reads empty strings back as masked, FITS strings as bytes.
            if hasattr(values, "mask"):
                values = values.filled("")
            text = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
            assert text == mine.tolist()
        else:
            np.testing.assert_array_equal(np.asarray(values), mine, err_msg=column)
    assert str(back["orientation"].unit) == "deg"


def test_write_refuses_to_overwrite_and_checks_format(tmp_path, small):
    image, labels, mask = small
    cat = hand_made_segmentation(image, labels, mask).catalog()
    path = tmp_path / "c.csv"
    path.write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        cat.write(path)
    assert path.read_text() == "keep me"
    cat.write(path, overwrite=True)
    assert path.read_text().startswith("label,")
    with pytest.raises(ValueError, match=r"cannot tell the format of 'c\.txt'"):
        cat.write(tmp_path / "c.txt")
    with pytest.raises(ValueError, match="format must be 'csv', 'ecsv', 'fits' or None; got 'xls'"):
        cat.write(tmp_path / "c.csv", format="xls", overwrite=True)
    with pytest.raises(TypeError, match="overwrite must be True or False; got 'yes'"):
        cat.write(path, overwrite="yes")
    cat.write(tmp_path / "c.txt", format="csv")
    assert (tmp_path / "c.txt").read_text() == path.read_text()


def test_to_table_columns_and_units(small):
    pytest.importorskip("astropy")
    image, labels, mask = small
    cat = hand_made_segmentation(image, labels, mask).catalog()
    table = cat.to_table()
    assert table.colnames == cat.columns and len(table) == 3
    assert str(table["area"].unit) == "pix2" and str(table["semimajor_axis"].unit) == "pix"
    assert table["flux_0"].unit is None
    np.testing.assert_array_equal(table["flux_1"], [18.0, 2.0, -1.0])
    assert table.meta["n_bands"] == 2
    assert "minus its sky" in table["flux_0"].description


def test_to_segmentation_image(small):
    image, labels, mask = small
    cat = hand_made_segmentation(image, labels, mask).catalog()
    segm = cat.to_segmentation_image()
    np.testing.assert_array_equal(segm.data, labels)
    np.testing.assert_array_equal(segm.labels, cat.label)
    segm.data[segm.data == 5] = 0  # a copy: the catalog's label image is untouched
    assert (labels == 5).sum() == 3


def test_to_segmentation_image_without_photutils(small, monkeypatch):
    image, labels, mask = small
    cat = hand_made_segmentation(image, labels, mask).catalog()
    monkeypatch.setitem(sys.modules, "photutils", None)
    monkeypatch.setitem(sys.modules, "photutils.segmentation", None)
    with pytest.raises(ImportError, match="needs photutils.*pip install photutils"):
        cat.to_segmentation_image()


def test_repr_and_len(small):
    image, labels, mask = small
    cat = hand_made_segmentation(image, labels, mask).catalog()
    assert repr(cat) == "SourceCatalog(n_sources=3, n_bands=2, wcs=no)"
    assert len(cat) == 3
