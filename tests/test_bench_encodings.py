"""bench/binary_codes.py and bench/encodings.py: exact results on hand-checkable cases."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from bench.binary_codes import (
    Vocabulary,
    assign,
    cell_groups,
    encode,
    fit_bmm,
    fit_vocabulary,
    normalise,
    squared_distances,
    to_bits,
)
from bench.encodings import (
    Grid,
    _orb,
    describe,
    grey_histogram,
    main,
    parse_args,
    pca_axes,
)
from bovw.image.words import pyramid_bins


def codes(*rows: list[int]) -> np.ndarray:
    """(n, 32) uint8 codes whose set bits are the given bit indices (0 = MSB of byte 0)."""
    out = np.zeros((len(rows), 256), np.uint8)
    for i, bits in enumerate(rows):
        out[i, bits] = 1
    return np.packbits(out, axis=1)


def test_bits_are_msb_first_and_euclidean_on_bits_is_hamming():
    pair = codes([0, 5, 9], [0, 200])
    assert to_bits(pair)[0, :10].tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert squared_distances(to_bits(pair[:1]), to_bits(pair[1:])).tolist() == [[3.0]]


def _two_clusters(rng, size=40):
    low = np.zeros((size, 256), np.uint8)
    high = np.ones((size, 256), np.uint8)
    low[:, :64] = rng.random((size, 64)) < 0.3  # some noise in the first 64 bits
    high[:, :64] = rng.random((size, 64)) < 0.7
    return np.packbits(np.vstack([low, high]), axis=1), low, high


@pytest.mark.parametrize("space", ["bits", "kmajority"])
def test_vocabulary_finds_two_clusters_and_their_means_or_majorities(space):
    sample, low, high = _two_clusters(np.random.default_rng(0))
    vocabulary = fit_vocabulary(sample, space, 2, iterations=3, seed=1)
    centers = vocabulary.centers[np.argsort(vocabulary.centers.sum(axis=1))]
    expected = np.stack([low.mean(axis=0), high.mean(axis=0)])
    if space == "kmajority":
        expected = (expected > 0.5).astype(np.float32)  # no ties with 40 members here
    np.testing.assert_allclose(centers, expected, atol=1e-6)


def test_bytes_vocabulary_is_lloyd_on_byte_values():
    sample = np.array([[0] * 32, [2] * 32, [200] * 32, [202] * 32], np.uint8)
    centers = fit_vocabulary(sample, "bytes", 2, iterations=2, seed=3).centers
    assert sorted(centers[:, 0].tolist()) == [1.0, 201.0]


def test_bmm_recovers_cluster_means_and_weights():
    rng = np.random.default_rng(1)
    sample, low, high = _two_clusters(rng, 60)
    sample = np.vstack([sample, np.packbits(high[:20], axis=1)])  # 60 low, 80 high rows
    model = fit_bmm(sample, 2, iterations=10, seed=0)
    order = np.argsort(model.centers.sum(axis=1))
    np.testing.assert_allclose(model.weights[order], [60 / 140, 80 / 140], atol=1e-3)
    expected_high = np.vstack([high, high[:20]]).mean(axis=0)
    np.testing.assert_allclose(model.centers[order[1]],
                               np.clip(expected_high, 1e-3, 1 - 1e-3), atol=1e-3)


def test_hard_and_soft_assignment_weights():
    vocabulary = Vocabulary("bits", to_bits(codes([], [0, 1], [0, 1, 2, 3])))
    point = to_bits(codes([0]))  # Hamming distances 1, 1, 3
    rows, words, weights = assign(point, vocabulary)
    assert (rows.tolist(), words.tolist(), weights.tolist()) == ([0], [0], [1.0])
    _, words, weights = assign(point, vocabulary, nearest=3, sigma=1.0)
    assert words.tolist() == [0, 1, 2]
    raw = np.array([1.0, 1.0, np.exp(-2.0 / 2.0)])
    np.testing.assert_allclose(weights, raw / raw.sum(), rtol=1e-6)
    _, _, weights = assign(point, vocabulary, nearest=2, weighting="rank")
    np.testing.assert_allclose(weights, [2 / 3, 1 / 3], rtol=1e-6)


def test_cells_are_the_pipeline_pyramid_bins():
    positions = np.array([[0, 0], [255, 0], [127, 128], [64, 200], [200, 63]], np.uint8)
    words = np.array([3, 1, 0, 2, 4])
    k, levels = 5, 3
    cells = cell_groups(positions, levels)
    ours = (cells * k + words[:, None]).T.ravel()
    np.testing.assert_array_equal(ours, pyramid_bins(words, positions, k, levels))


def test_bow_vlad_and_fisher_sums_on_a_hand_case():
    centers = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
    points = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0]], np.float32)
    image_of = np.array([0, 0, 1])
    cells = cell_groups(np.array([[0, 0], [255, 255], [10, 10]], np.uint8), 2)
    hard = (np.arange(3), np.array([0, 1, 0]), np.ones(3, np.float32))
    vocabulary = Vocabulary("bits", centers)
    bow = encode(points, image_of, 2, cells, 5, hard, vocabulary, "bow")
    # image 0: word 0 and word 1 in the whole image, then cell 1 (top left) word 0,
    # cell 4 (bottom right) word 1; image 1: word 0 in the whole image and in cell 1.
    assert bow[0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    assert bow[1].tolist() == [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    vlad = encode(points, image_of, 2, cells, 5, hard, vocabulary, "vlad").reshape(2, 5, 2, 2)
    assert vlad[0, 0].tolist() == [[0, 1], [0, 0]]   # (0,1)-(0,0) and (1,1)-(1,1)
    assert vlad[1, 1].tolist() == [[1, 0], [0, 0]]

    mixture = Vocabulary("bmm", np.array([[0.2, 0.5], [0.9, 0.6]], np.float32),
                         np.array([0.25, 0.75]))
    soft = (np.repeat(np.arange(3), 2), np.tile([0, 1], 3),
            np.array([0.5, 0.5, 0.1, 0.9, 1.0, 0.0], np.float32))
    fisher = encode(points, image_of, 2, cells, 5, soft, mixture, "fisher").reshape(2, 5, 2, 3)
    # Whole image 0: T = 2, S0 = (0.6, 1.4); S1 = 0.5 (0,1) + 0.1 (1,1) for word 0.
    mu, w = mixture.centers.astype(np.float64), mixture.weights
    s0, s1 = np.array([0.6, 1.4]), np.array([[0.1, 0.6], [0.9, 1.4]])
    grad_w = (s0 - 2 * w) / (2 * np.sqrt(w))
    grad_mu = (s1 - s0[:, None] * mu) / (2 * np.sqrt(w)[:, None] * np.sqrt(mu * (1 - mu)))
    np.testing.assert_allclose(fisher[0, 0, :, 0], grad_w, rtol=1e-5)
    np.testing.assert_allclose(fisher[0, 0, :, 1:], grad_mu, rtol=1e-5)
    assert not fisher[1, 2:].any()  # image 1 has nothing outside cell 1


def test_normalise_power_intra_and_cell_blocks():
    # One image, 2 cells, k = 1, width 2: [3, -4 | 0, 2]
    features = np.array([[9.0, -16.0, 0.0, 4.0]], np.float32)
    normalise(features, n_cells=2, k=1, power=0.5)
    np.testing.assert_allclose(features, [[3, -4, 0, 2]] / np.sqrt(29), rtol=1e-6)
    features = np.array([[3.0, -4.0, 0.0, 2.0]], np.float32)
    normalise(features, n_cells=2, k=1, blocks="cell")
    np.testing.assert_allclose(features, [[0.6 / 2**0.5, -0.8 / 2**0.5, 0, 1 / 2**0.5]],
                               rtol=1e-6)


def test_pca_axes_exact_and_subspace_agree_on_a_low_rank_matrix():
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((300, 3)) * [5.0, 3.0, 2.0]) @ rng.standard_normal((3, 600))
    data = (data + rng.standard_normal((300, 600)) * 0.01).astype(np.float32)
    wide = pca_axes(data, 3, seed=0)  # 600 columns: subspace iteration
    exact = pca_axes(data[:, :500], 3, seed=0)  # 500 columns: covariance decomposed
    centred = data - data.mean(axis=0)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(np.abs(wide.T @ vt[:3].T), np.eye(3), atol=1e-4)
    _, _, vt = np.linalg.svd(centred[:, :500].astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(np.abs(exact.T @ vt[:3].T), np.eye(3), atol=1e-4)


def _textured(size=100, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 4, size // 4)).astype(np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC),
                            (3, 3), 0)


def test_octave_ignored_scale_only_thins_the_grid_while_resize_describes_larger_patches():
    grey = _textured()
    one, one_at = describe(grey, Grid("octave-ignored", (1.0,), 5))
    ignored, _ = describe(grey, Grid("octave-ignored", (1.0, 2.0), 5))
    # The "2.0" grid: size 16 keypoints every 10 px from 9 px in; OpenCV describes them as
    # size 8 ones (patch_size), so they are just a sparser grid of the same codes.
    size_eight = [cv2.KeyPoint(float(x), float(y), 8.0) for y in range(9, 91, 10)
                  for x in range(9, 91, 10)]
    _, expected = _orb(Grid("octave-ignored", (1.0,), 5)).compute(grey, size_eight)
    np.testing.assert_array_equal(ignored[len(one):], expected)

    resized, resized_at = describe(grey, Grid("resize", (1.0, 2.0), 5))
    extra, extra_at = resized[len(one):], resized_at[len(one):]
    np.testing.assert_array_equal(resized[:len(one)], one)
    assert len(extra) > 0
    _, half = _orb(Grid("resize", (1.0,), 5)).compute(
        cv2.resize(grey, (50, 50), interpolation=cv2.INTER_AREA),
        [cv2.KeyPoint(float(x), float(y), 8.0) for y in range(10, 41, 5)
         for x in range(10, 41, 5)])
    np.testing.assert_array_equal(extra, half)
    # Half-size grid point x is 2x + 0.5 here: 20.5 -> 52, 80.5 -> 206 (x 256 / 100).
    assert extra_at[0].tolist() == [52, 52] and extra_at[-1].tolist() == [206, 206]


def test_command_line_options():
    args = parse_args(["data", "--assign", "soft:4", "--scales", "1,1.5,2"])
    assert args.nearest == 4 and args.scales == [1.0, 1.5, 2.0]
    with pytest.raises(SystemExit):
        parse_args(["data", "--assign", "soft"])


def test_grey_histogram_counts_the_fruit_pixels_only():
    grey = np.array([[0, 255, 128, 240], [229, 230, 8, 64]], np.uint8)
    # 230, 240 and 255 are background (> 0.9 * 255); 0, 8 -> bin 0, 64 -> 1, 128 -> 2,
    # 229 -> 3 of 4.
    np.testing.assert_allclose(grey_histogram(grey, 4), [0.4, 0.2, 0.2, 0.2])
    assert not grey_histogram(np.full((3, 3), 250, np.uint8), 4).any()
    # Two levels, 2 bins: whole image, then the 2 x 2 cells (row-major) of a 2 x 2 image.
    quad = np.array([[10, 200], [255, 130]], np.uint8)  # 3 fruit pixels: bins 0, 1, 1
    expected = np.array([1, 2, 1, 0, 0, 1, 0, 0, 0, 1]) / 3
    np.testing.assert_allclose(grey_histogram(quad, 2, levels=2), expected, rtol=1e-6)


@pytest.mark.parametrize(("options", "dimension"), [
    (["--encoding", "bow", "--k", "4", "--pyramid", "2"], 20),
    (["--encoding", "vlad", "--vocabulary", "bits", "--k", "4", "--pyramid", "1",
      "--power", "0.5", "--intra"], 4 * 256),
    (["--encoding", "fisher", "--k", "3", "--pyramid", "2", "--scale-mode", "resize",
      "--colour", "1"], 5 * 3 * 257 + 512),
])
def test_tiny_runs_log_one_result_per_setting_and_cache_descriptors(tmp_path, options,
                                                                    dimension):
    from tests.test_bench_reference import _write_dataset

    data, cache, log = tmp_path / "data", tmp_path / "cache", tmp_path / "log.jsonl"
    _write_dataset(data, seed=0, train_per_class=6, test_per_class=3)
    argv = [str(data), *options, "--sample-size", "500", "--processes", "1",
            "--cache", str(cache), "--log", str(log), "--pca", "3,0", "--reg", "1e-6,1e-3"]
    assert main(argv) == 0
    results = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["pca"], r["reg"]) for r in results] == [(3, 1e-6), (3, 1e-3), (0, 1e-6),
                                                       (0, 1e-3)]
    assert {r["dimension"] for r in results} == {dimension}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in results)
    assert results[1]["command"].endswith("--pca 3 --reg 0.001")
    assert len(list(cache.glob("descriptors-*.npz"))) == 1
