"""The overview figure."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from skimgcluster import segment
from skimgcluster._plotting import display_image, label_colormap, plot_overview


@pytest.fixture(scope="module")
def rgb_case():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :80]
    image = rng.normal(20, 2, (64, 80, 3))
    for y0, x0, colour in [(20, 20, (1, 0.5, 0.2)), (45, 60, (0.2, 0.5, 1))]:
        blob = 150 * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / 12)
        image += blob[..., None] * np.array(colour)
    image = np.clip(image, 0, 255).astype(np.uint8)
    return image, segment(image, random_state=0)


def test_overview_rgb(rgb_case, tmp_path):
    image, result = rgb_case
    fig = plot_overview(image, result)
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 4
    assert axes[3].get_title() == f"{result.n_sources:,} sources"
    assert "samples" in axes[2].get_title()
    # Image orientation: row 0 at the top.
    assert axes[0].get_ylim() == (63.5, -0.5)
    fig.savefig(tmp_path / "overview.png")
    assert (tmp_path / "overview.png").stat().st_size > 1000


def test_overview_grayscale_float(tmp_path):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:48, :48]
    image = rng.normal(0, 1, (48, 48)) + 30 * np.exp(-((yy - 24) ** 2 + (xx - 24) ** 2) / 10)
    result = segment(image, random_state=0)
    fig = plot_overview(image, result, max_points=100)
    assert len(fig.axes) == 4
    fig.savefig(tmp_path / "gray.png")


def test_display_image_scales_to_unit_range():
    data = np.array([[0.0, 1.0], [np.nan, 1000.0]])
    shown = display_image(data)
    assert shown.min() >= 0 and shown.max() <= 1 and not np.isnan(shown).any()
    np.testing.assert_allclose(display_image(np.array([[0, 255]], dtype=np.uint8)), [[0, 1]])


def test_label_colormap_background_is_black():
    cmap = label_colormap(5)
    assert cmap.N == 6
    np.testing.assert_array_equal(cmap(0)[:3], (0, 0, 0))
