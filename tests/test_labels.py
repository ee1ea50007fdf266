"""Tests of labels_to_image and cluster_masks: labels of points -> pixels."""

import numpy as np
import pytest
from conftest import nested_points
from skimage.measure import regionprops

from skimgcluster import AstroLinkClusterer, cluster_masks, labels_to_image

# -- labels_to_image -------------------------------------------------------------------


def test_dtype_background_and_label_plus_one():
    points = np.array([[1.0, 2.0], [4.0, 0.0], [3.0, 3.0]])  # (x, y)
    image = labels_to_image([0, 2, -1], points, (4, 6), fill_distance=0)
    assert image.dtype == np.int32
    assert image.shape == (4, 6)
    expected = np.zeros((4, 6), dtype=np.int32)
    expected[2, 1] = 1  # label 0 at row y=2, column x=1
    expected[0, 4] = 3  # label 2
    np.testing.assert_array_equal(image, expected)


def test_points_go_to_the_nearest_pixel_centre():
    # Pixel (r, c) covers [c - 0.5, c + 0.5) x [r - 0.5, r + 0.5).
    points = np.array([[1.49, 0.0], [1.5, 2.0], [-0.5, 1.0], [0.51, 0.49]])
    image = labels_to_image([0, 1, 2, 3], points, (3, 3), fill_distance=0)
    assert image[2, 2] == 2  # (1.5, 2.0): the upper edge belongs to the next pixel
    assert image[1, 0] == 3  # (-0.5, 1.0): the lower edge belongs to the pixel
    # (1.49, 0.0) and (0.51, 0.49) both fall in pixel (0, 1), where labels 0
    # and 3 tie with one vote each: the lower label wins.
    assert image[0, 1] == 1 and image[0, 0] == 0
    assert np.count_nonzero(image) == 3


def test_points_outside_are_clipped_to_the_edge():
    points = np.array([[-5.0, 1.0], [10.0, 100.0]])
    image = labels_to_image([0, 1], points, (3, 4), fill_distance=0)
    assert image[1, 0] == 1
    assert image[2, 3] == 2


def test_majority_vote_and_ties():
    points = np.array([[0.0, 0.0]] * 3 + [[2.0, 0.0]] * 2 + [[4.0, 0.0]] * 2)
    labels = [1, 1, 0, 5, -1, 3, 2]
    image = labels_to_image(labels, points, (1, 5), fill_distance=0)
    # Pixel 0: two votes for 1, one for 0. Pixel 2: a tie of 5 and noise,
    # noise (the lower label) wins. Pixel 4: a tie of 3 and 2, 2 wins.
    np.testing.assert_array_equal(image, [[2, 0, 0, 0, 3]])


def test_noise_only_gives_background():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 10, (50, 2))
    image = labels_to_image(np.full(50, -1), points, (10, 10))
    np.testing.assert_array_equal(image, 0)
    assert image.dtype == np.int32


def test_empty_input_gives_background():
    image = labels_to_image(np.empty(0, dtype=int), np.empty((0, 2)), (5, 7))
    np.testing.assert_array_equal(image, np.zeros((5, 7)))
    assert image.dtype == np.int32


def test_fill_distance_grows_seeds():
    points = np.array([[5.0, 5.0]])
    sizes = {}
    for d in (0, 1, 2, 3):
        image = labels_to_image([0], points, (11, 11), fill_distance=d)
        rows, cols = np.nonzero(image)
        assert np.all(np.hypot(rows - 5, cols - 5) <= d + 1e-9)
        sizes[d] = rows.size
        np.testing.assert_array_equal(np.unique(image), [0, 1])
    assert sizes[0] == 1 and sizes[1] == 5  # a pixel, then its 4-neighbours
    assert sizes[0] < sizes[1] < sizes[2] < sizes[3]


def test_fill_distance_does_not_overwrite_other_labels():
    points = np.array([[2.0, 2.0], [4.0, 2.0]])
    image = labels_to_image([0, 1], points, (5, 7), fill_distance=3)
    assert image[2, 2] == 1 and image[2, 4] == 2
    assert image[2, 0] == 1 and image[2, 6] == 2


def test_footprint_filling():
    footprint = np.zeros((10, 12), dtype=bool)
    footprint[1:5, 1:6] = True  # region A, seeded by label 0
    footprint[6:9, 7:11] = True  # region B, seeded by label 1 and noise
    footprint[1:3, 9:11] = True  # region C, no seed
    points = np.array([[2.0, 2.0], [9.0, 7.0], [8.0, 8.0], [8.0, 8.0], [0.0, 9.0]])
    labels = [0, 1, -1, -1, 1]  # the last point lies outside the footprint
    image = labels_to_image(labels, points, footprint.shape, footprint=footprint)
    assert image.dtype == np.int32
    np.testing.assert_array_equal(image[1:5, 1:6], 1)  # flooded from one pixel
    np.testing.assert_array_equal(image[6:9, 7:11], 2)  # noise seed yields to the label
    np.testing.assert_array_equal(image[1:3, 9:11], 0)  # nothing to flood from
    np.testing.assert_array_equal(image[~footprint], 0)


def test_footprint_split_between_two_labels_by_distance():
    footprint = np.zeros((3, 11), dtype=bool)
    footprint[1, :] = True
    points = np.array([[1.0, 1.0], [9.0, 1.0]])
    image = labels_to_image([0, 1], points, (3, 11), footprint=footprint)
    np.testing.assert_array_equal(image[1, :5], 1)
    np.testing.assert_array_equal(image[1, 6:], 2)
    np.testing.assert_array_equal(image[[0, 2]], 0)


def test_float_integer_labels_accepted():
    points = np.array([[0.0, 0.0], [1.0, 1.0]])
    a = labels_to_image(np.array([0.0, 1.0]), points, (2, 2), fill_distance=0)
    b = labels_to_image(np.array([0, 1]), points, (2, 2), fill_distance=0)
    np.testing.assert_array_equal(a, b)


def test_shape_of_a_colour_image_is_cut_to_two():
    points = np.array([[1.0, 1.0, 5.0, 5.0, 10.0]])  # colour columns are ignored
    image = labels_to_image([0], points, (3, 4, 3), fill_distance=0)
    assert image.shape == (3, 4)


def test_regionprops_on_output():
    rng = np.random.default_rng(1)
    a = rng.normal([10.0, 8.0], 1.0, (300, 2))  # (x, y)
    b = rng.normal([30.0, 20.0], 1.5, (300, 2))
    points = np.concatenate([a, b])
    labels = np.repeat([0, 1], 300)
    image = labels_to_image(labels, points, (32, 40))
    props = regionprops(image)
    assert [p.label for p in props] == [1, 2]
    # regionprops centroids are (row, col) = (y, x).
    np.testing.assert_allclose(props[0].centroid, (8.0, 10.0), atol=0.5)
    np.testing.assert_allclose(props[1].centroid, (20.0, 30.0), atol=0.5)
    assert props[1].area > props[0].area


@pytest.mark.parametrize(
    ("labels", "points", "shape", "kwargs", "error", "match"),
    [
        ([0, 1], np.zeros((3, 2)), (4, 4), {}, ValueError, "same length"),
        ([[0, 1]], np.zeros((2, 2)), (4, 4), {}, ValueError, "1-D"),
        ([0], np.zeros((1, 1)), (4, 4), {}, ValueError, "points must have shape"),
        ([0], np.zeros(2), (4, 4), {}, ValueError, "points must have shape"),
        ([-2], np.zeros((1, 2)), (4, 4), {}, ValueError, "-1"),
        ([0.5], np.zeros((1, 2)), (4, 4), {}, TypeError, "integers"),
        (["a"], np.zeros((1, 2)), (4, 4), {}, TypeError, "integers"),
        ([0], np.array([[np.nan, 1.0]]), (4, 4), {}, ValueError, "finite"),
        ([0], np.zeros((1, 2)), (0, 4), {}, ValueError, "shape"),
        ([0], np.zeros((1, 2)), (4,), {}, ValueError, "shape"),
        ([0], np.zeros((1, 2)), (4, 4), {"fill_distance": -1}, ValueError, "fill_distance"),
        (
            [0],
            np.zeros((1, 2)),
            (4, 4),
            {"footprint": np.ones((4, 5), dtype=bool)},
            ValueError,
            "footprint",
        ),
    ],
)
def test_bad_input_raises(labels, points, shape, kwargs, error, match):
    with pytest.raises(error, match=match):
        labels_to_image(labels, points, shape, **kwargs)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(2)
    points = rng.uniform(-2, 12, (100, 4))
    labels = rng.integers(-1, 3, 100)
    footprint = rng.random((10, 10)) > 0.3
    copies = points.copy(), labels.copy(), footprint.copy()
    labels_to_image(labels, points, (10, 10), footprint=footprint)
    labels_to_image(labels, points, (10, 10), fill_distance=2)
    for original, copy in zip((points, labels, footprint), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


# -- cluster_masks ---------------------------------------------------------------------

IMAGE_SHAPE = (60, 72)


@pytest.fixture(scope="module")
def nested_in_image():
    # The nested points, scaled and moved into the image: AstroLink's result
    # does not change under a uniform scaling and a translation.
    points = nested_points() * 1.2 + [20.0, 30.0]
    clusterer = AstroLinkClusterer(k_den=20, min_significance=3.0).fit(points)
    assert list(clusterer.cluster_ids_) == ["1-1", "1-2", "1-2-1", "1-2-2"]
    return points, clusterer


def test_cluster_masks_ids_and_shapes(nested_in_image):
    points, c = nested_in_image
    ids, masks = cluster_masks(c, points, IMAGE_SHAPE)
    np.testing.assert_array_equal(ids, c.cluster_ids_)
    assert masks.shape == (c.n_clusters_, *IMAGE_SHAPE)
    assert masks.dtype == bool
    assert np.all(masks.sum(axis=(1, 2)) > 10)


def _members_mask(c, points, j, **kwargs):
    """The pixels of cluster j's members alone, with no parent to clip them."""
    lab = np.full(points.shape[0], -1, dtype=np.intp)
    lab[c.cluster_members(j)] = 0
    return labels_to_image(lab, points, IMAGE_SHAPE, **kwargs) > 0


@pytest.mark.parametrize("fill_distance", [0, 1.0, 3.0])
def test_child_mask_inside_parent_mask(nested_in_image, fill_distance):
    # cluster_masks clips a child's mask to its parent's, so its nesting is true
    # by construction. What can fail: the pixels of a child's members alone lie
    # inside those of its parent's members (the pixel vote, the growth and the
    # flooding keep subsets), so the clip removes nothing and each mask is
    # exactly its members' pixels.
    points, c = nested_in_image
    ids, masks = cluster_masks(c, points, IMAGE_SHAPE, fill_distance=fill_distance)
    own = [_members_mask(c, points, j, fill_distance=fill_distance) for j in range(c.n_clusters_)]
    assert (c.parents_ >= 0).any()
    for j, parent in enumerate(c.parents_):
        np.testing.assert_array_equal(masks[j], own[j])
        if parent >= 0:
            assert np.all(own[parent][own[j]])
            assert own[j].sum() < own[parent].sum()
    # The blob and the galaxy are far apart: their masks do not touch.
    assert not np.any(masks[0] & masks[1])


def test_cluster_mask_covers_its_members(nested_in_image):
    points, c = nested_in_image
    _, masks = cluster_masks(c, points, IMAGE_SHAPE, fill_distance=0)
    for j in range(c.n_clusters_):
        members = c.cluster_members(j)
        col = np.floor(points[members, 0] + 0.5).astype(int)
        row = np.floor(points[members, 1] + 0.5).astype(int)
        # Pixels where the cluster's members are a majority are in the mask.
        assert masks[j][row, col].mean() > 0.5
        centre = np.round(np.median(points[members], axis=0)).astype(int)
        assert masks[j][centre[1], centre[0]]


def test_cluster_masks_by_level(nested_in_image):
    points, c = nested_in_image
    ids_all, masks_all = cluster_masks(c, points, IMAGE_SHAPE)
    ids1, masks1 = cluster_masks(c, points, IMAGE_SHAPE, level=1)
    ids2, masks2 = cluster_masks(c, points, IMAGE_SHAPE, level=2)
    np.testing.assert_array_equal(ids1, ["1-1", "1-2"])
    np.testing.assert_array_equal(ids2, ["1-2-1", "1-2-2"])
    np.testing.assert_array_equal(masks1, masks_all[:2])
    np.testing.assert_array_equal(masks2, masks_all[2:])
    ids3, masks3 = cluster_masks(c, points, IMAGE_SHAPE, level=3)
    assert ids3.shape == (0,) and masks3.shape == (0, *IMAGE_SHAPE)


def test_cluster_masks_with_footprint(nested_in_image):
    points, c = nested_in_image
    yy, xx = np.mgrid[: IMAGE_SHAPE[0], : IMAGE_SHAPE[1]]
    footprint = (np.abs(yy - 30) < 12) & (xx > 3)
    _, masks = cluster_masks(c, points, IMAGE_SHAPE, footprint=footprint)
    assert not np.any(masks & ~footprint)
    for j, parent in enumerate(c.parents_):
        if parent >= 0:
            assert np.all(masks[parent][masks[j]])


def _geodesic_distances(seed_mask, mask):
    """4-connected path length from any pixel of seed_mask, inside mask (brute force)."""
    from collections import deque

    h, w = mask.shape
    dist = np.full((h, w), np.inf)
    queue = deque()
    for i, j in zip(*np.nonzero(seed_mask), strict=True):
        dist[i, j] = 0
        queue.append((i, j))
    while queue:
        i, j = queue.popleft()
        for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if 0 <= a < h and 0 <= b < w and mask[a, b] and dist[a, b] == np.inf:
                dist[a, b] = dist[i, j] + 1
                queue.append((a, b))
    return dist


@pytest.mark.parametrize("seed", range(5))
def test_footprint_fill_takes_the_geodesically_nearest_seed(seed):
    rng = np.random.default_rng(seed)
    h, w = 30, 40
    footprint = rng.random((h, w)) < 0.75
    points = np.column_stack([rng.integers(0, w, 12), rng.integers(0, h, 12)]).astype(float)
    labels = rng.integers(0, 4, 12)
    seeds = labels_to_image(labels, points, (h, w), fill_distance=0)
    seeds = np.where(footprint, seeds, 0)
    out = labels_to_image(labels, points, (h, w), footprint=footprint)
    present = [v for v in np.unique(seeds) if v > 0]
    if not present:
        assert not out.any()
        return
    dist = np.stack([_geodesic_distances((seeds == v) & footprint, footprint) for v in present])
    nearest = dist.min(axis=0)
    reachable = np.isfinite(nearest)
    # Unreachable footprint pixels and pixels outside the footprint stay 0.
    assert not out[~reachable].any()
    # Every reachable pixel carries a label at the minimal path length.
    rows, cols = np.nonzero(reachable)
    chosen = np.array([present.index(v) for v in out[rows, cols]])
    np.testing.assert_array_equal(dist[chosen, rows, cols], nearest[rows, cols])


# -- misuse gives clear errors (issue 13, rows 10 and 12) --------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        np.array([2**64 - 1, 2**64 - 1, 0], np.uint64),
        np.array([2**63, 0, 0], np.uint64),
        np.array([1e30, 0.0, 0.0]),
    ],
)
def test_labels_beyond_int32_are_refused_before_any_cast(labels):
    # uint64 labels >= 2**63 wrapped to negative values in the cast to intp:
    # 2**64 - 1 became -1 (noise, silently), 2**63 a "got -9223372036854775808".
    points = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    got = r"got (18446744073709551615|9223372036854775808|1e\+30)"
    with pytest.raises(ValueError, match=r"labels must be at most .* " + got):
        labels_to_image(labels, points, (4, 4), fill_distance=0)


def test_uint64_labels_in_range_are_accepted():
    points = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    out = labels_to_image(np.array([5, 0, 0], np.uint64), points, (4, 4), fill_distance=0)
    assert out[1, 1] == 6 and out[2, 2] == 1


@pytest.fixture
def fitted_on_nested():
    X = nested_points()
    return AstroLinkClusterer(k_den=20, min_significance=3.0).fit(X), X


def test_cluster_masks_needs_the_fitted_points(fitted_on_nested):
    c, X = fitted_on_nested
    with pytest.raises(ValueError, match=r"points must be the \d+ points the clusterer was fit"):
        cluster_masks(c, X[:10], (100, 100))


def test_cluster_masks_needs_a_fitted_clusterer():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        cluster_masks(AstroLinkClusterer(), nested_points(), (100, 100))
    with pytest.raises(TypeError, match="'clusterer' .* must be an instance of AstroLinkClusterer"):
        cluster_masks("clusterer", nested_points(), (100, 100))


@pytest.mark.parametrize(
    ("level", "error", "match"),
    [("a", TypeError, "'level' .* must be an int in the range \\[1, inf\\) or None; got level='a'"),
     (1.0, TypeError, "'level' .* must be an int"), (True, TypeError, "'level' .* must be an int"),
     (0, ValueError, r"'level' .* must be an int in the range \[1, inf\) or None; got level=0")],
)  # fmt: skip
def test_cluster_masks_checks_level(fitted_on_nested, level, error, match):
    c, X = fitted_on_nested
    with pytest.raises(error, match=match):
        cluster_masks(c, X, (100, 100), level=level)


def _flooded(seeds, mask):
    from skimgcluster._kernels.labels import flood

    out = np.array(seeds, dtype=np.int32)
    flood(out, np.asarray(mask, dtype=bool), np.empty(out.size, np.int64))
    return out


def test_flood_breaks_ties_by_the_first_neighbour_dequeued():
    # The last pixel is one step from label 3 (above) and from label 1 (left).
    # Seeds are dequeued in raster order, so 3 (at (0, 1)) reaches it before
    # 1 (at (1, 0)); scikit-image's flat watershed gives it 1.
    from skimage.segmentation import watershed

    seeds = np.array([[2, 3], [1, 0]])
    mask = np.ones((2, 2), dtype=bool)
    np.testing.assert_array_equal(_flooded(seeds, mask), [[2, 3], [1, 3]])
    np.testing.assert_array_equal(watershed(np.zeros((2, 2)), seeds, mask=mask), [[2, 3], [1, 1]])


def test_flood_is_the_flat_watershed_without_ties():
    # Away from ties the flood is scikit-image's watershed on a flat surface:
    # every pixel takes its nearest seed along 4-connected paths in the mask.
    from skimage.segmentation import watershed

    mask = np.ones((5, 9), dtype=bool)
    mask[1:4, 4] = False  # a wall with gaps at the top and bottom rows
    seeds = np.zeros((5, 9), dtype=np.int32)
    seeds[2, 0], seeds[2, 8] = 1, 2
    seeds[0, 0] = 5  # a seed outside the mask is cleared
    mask[0, 0] = False
    got = _flooded(seeds, mask)
    assert got[0, 0] == 0
    # Seeds and wall are symmetric about column 4: its pixels are the only ties.
    untied = mask.copy()
    untied[:, 4] = False
    want = watershed(np.zeros(mask.shape), np.where(mask, seeds, 0), mask=mask)
    np.testing.assert_array_equal(got[untied], want[untied])
