"""The single-process reference: its numeric helpers on hand-checkable inputs, its descriptors
and spatial-pyramid bins against the pipeline's own (bovw.image.orb, bovw.image.words), and
tiny runs."""

import dataclasses

import cv2
import numpy as np
import pytest
from scipy import sparse
from sklearn.decomposition import PCA

from bench.reference import (
    append_tone,
    describe_grey_image,
    histogram_bins,
    list_images,
    nearest_words,
    project,
    run_reference,
    weight_histograms,
    word_histograms,
)
from bovw.config import HistogramSettings, OrbSettings, ToneSettings, load_config
from bovw.image.orb import describe_keypoints
from bovw.image.synthetic import render_fruit
from bovw.image.words import pyramid_bins


def test_nearest_words_picks_the_closest_center_across_chunks():
    centers = np.array([[0.0] * 32, [10.0] * 32, [20.0] * 32], dtype=np.float32)
    descriptors = np.array([[9] * 32, [1] * 32, [16] * 32, [14] * 32], dtype=np.uint8)
    assert nearest_words(descriptors, centers, chunk=3).tolist() == [1, 0, 2, 1]


def test_histograms_count_words_and_keep_empty_images_at_zero():
    centers = np.array([[0.0] * 32, [10.0] * 32], dtype=np.float32)
    images = [
        np.array([[0] * 32, [9] * 32, [11] * 32], dtype=np.uint8),
        np.empty((0, 32), dtype=np.uint8),
        np.array([[1] * 32], dtype=np.uint8),
    ]
    histograms = word_histograms(images, centers)
    assert sparse.issparse(histograms)
    assert histograms.toarray().tolist() == [[1, 2], [0, 0], [1, 0]]


def test_tfidf_uses_spark_idf_fitted_on_train_then_l2():
    train = np.array([[2.0, 0.0], [1.0, 3.0]])
    test = np.array([[0.0, 4.0]])
    idf = [np.log(3 / 3), np.log(3 / 2)]  # log((m + 1) / (df + 1)) with m = 2, df = (2, 1)
    weighted_train, weighted_test = weight_histograms(train, test,
                                                         HistogramSettings(True, False, power=1.0))
    assert np.allclose(weighted_train.toarray(), [[0.0, 0.0], [0.0, 3 * idf[1]]])
    assert np.allclose(weighted_test.toarray(), [[0.0, 4 * idf[1]]])
    _, normalised_test = weight_histograms(train, np.array([[3.0, 4.0]]),
                                           HistogramSettings(False, power=1.0))
    assert np.allclose(normalised_test.toarray(), [[0.6, 0.8]])


def test_power_keeps_counts_sparse_and_leaves_zeros_at_zero():
    settings = HistogramSettings(tfidf=True, l2=False, power=0.5)
    train = sparse.csr_matrix([[4.0, 0.0], [0.0, 9.0], [1.0, 0.0]])
    weighted, _ = weight_histograms(train, train, settings)
    idf = np.log(4 / 3)  # m = 3, df = (2, 1): log(4 / 3), log(4 / 2)
    assert weighted.nnz == 3
    assert np.allclose(weighted.toarray(), [[np.sqrt(4 * idf), 0.0],
                                            [0.0, np.sqrt(9 * np.log(2))],
                                            [np.sqrt(idf), 0.0]])


def test_sparse_pca_projects_as_a_dense_exact_pca_does():
    rng = np.random.default_rng(0)
    dense = rng.poisson(0.3, size=(60, 40)).astype(float)
    train, test = sparse.csr_matrix(dense[:50]), sparse.csr_matrix(dense[50:])
    projected_train, projected_test = project(train, test, 5, seed=0)
    exact = PCA(5, svd_solver="full").fit(dense[:50])
    # Axes are defined up to their sign.
    signs = np.sign(np.sum(projected_train * exact.transform(dense[:50]), axis=0))
    assert np.allclose(projected_train * signs, exact.transform(dense[:50]), atol=1e-8)
    assert np.allclose(projected_test * signs, exact.transform(dense[50:]), atol=1e-8)
    # As many components as rows or columns: the full solver, on the rows made dense.
    assert project(train[:4], test, 10, seed=0)[1].shape == (10, 4)


def test_list_images_matches_extensions_in_any_case(tmp_path):
    for relative in ("Training/B/1.JPG", "Training/A/2.png", "Test/A/3.Jpeg", "Test/A/n.txt"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    assert [(split, label, path.rsplit("/", 1)[1]) for path, split, label in
            list_images(tmp_path, ("jpg", "jpeg", "png"))] == [
        ("Training", "A", "2.png"), ("Training", "B", "1.JPG"), ("Test", "A", "3.Jpeg"),
    ]


def test_list_images_names_the_missing_split(tmp_path):
    (tmp_path / "Training" / "A").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"Test not found: the input folder must hold"):
        list_images(tmp_path, ("jpg",))


def _write_shapes(path, shape, rng):
    image = np.full((100, 100, 3), 255, np.uint8)
    for _ in range(5):
        x, y = (int(v) for v in rng.integers(20, 80, 2))
        if shape == "circle":
            cv2.circle(image, (x, y), 8, (0, 0, 200), -1)
        else:
            cv2.rectangle(image, (x - 7, y - 7), (x + 7, y + 7), (200, 0, 0), -1)
    cv2.imwrite(str(path), image)


def _write_dataset(root, seed: int, train_per_class: int, test_per_class: int) -> None:
    """Circles and squares, `train_per_class` + `test_per_class` PNGs each."""
    rng = np.random.default_rng(seed)
    for split, count in (("Training", train_per_class), ("Test", test_per_class)):
        for shape in ("circle", "square"):
            folder = root / split / shape
            folder.mkdir(parents=True)
            for index in range(count):
                _write_shapes(folder / f"{index}.png", shape, rng)


def test_tiny_run_counts_splits_and_skips_unreadable_files(tmp_path):
    _write_dataset(tmp_path, seed=0, train_per_class=6, test_per_class=3)
    (tmp_path / "Training" / "circle" / "broken.jpg").write_bytes(b"not an image")
    config = load_config(None, {"vocabulary.k": 8, "pca.components": 4})
    result = run_reference(tmp_path, config, processes=1)
    assert list(result["timings"]) == [
        "ingest", "descriptors", "vocabulary", "histograms", "reduction", "classifier",
    ]
    counts = {key: result[key] for key in ("n_images", "n_train", "n_test", "n_unreadable")}
    assert counts == {"n_images": 19, "n_train": 12, "n_test": 6, "n_unreadable": 1}
    assert result["mean_keypoints"] > 0


def test_pyramid_bins_are_the_pipelines_bins():
    # k = 3. Level 1 (bins 3..14): (0, 0) cell 0, (255, 0) cell 1, (128, 200) cell 3.
    # Level 2 (bins 15..62): cells 0, 3 and (x 2, y 3) -> 14.
    words = np.array([0, 2, 1])
    positions = np.array([[0, 0], [255, 0], [128, 200]], dtype=np.uint8)
    assert histogram_bins(words, positions, 3, 1).tolist() == [0, 2, 1]
    assert histogram_bins(words, positions, 3, 2).tolist() == [0, 2, 1, 3, 8, 13]
    assert histogram_bins(words, positions, 3, 3).tolist() == [0, 2, 1, 3, 8, 13, 15, 26, 58]
    for levels in (1, 2, 3, 4):
        assert np.array_equal(histogram_bins(words, positions, 3, levels),
                              pyramid_bins(words, positions, 3, levels))


def test_pyramid_histograms_count_each_descriptor_once_per_level():
    centers = np.array([[0.0] * 32, [10.0] * 32], dtype=np.float32)
    images = [np.array([[0] * 32, [9] * 32], dtype=np.uint8), np.empty((0, 32), dtype=np.uint8)]
    positions = [np.array([[10, 10], [200, 250]], dtype=np.uint8), np.empty((0, 2), np.uint8)]
    # k = 2, 2 levels: bins 0-1 whole image, then 2 per cell: word 0 in cell 0 (bin 2),
    # word 1 in cell 3 (bin 2 + 3 * 2 + 1 = 9).
    assert word_histograms(images, centers, positions, 2).toarray().tolist() == [
        [1, 1, 1, 0, 0, 0, 0, 0, 0, 1], [0] * 10,
    ]


@pytest.mark.parametrize("upscale", [1.0, 2.0])
def test_dense_descriptors_and_positions_match_the_pipeline(upscale):
    grey = cv2.cvtColor(render_fruit("Kiwi", np.random.default_rng(3)), cv2.COLOR_RGB2GRAY)
    settings = OrbSettings(sampling="dense", dense_step=5, dense_scales=(1.0, 1.5, 2.0),
                           upscale=upscale)
    descriptors, positions = describe_grey_image(grey, settings, positions=True)
    expected_descriptors, expected_positions = describe_keypoints(grey, settings)
    assert len(descriptors) > 100
    assert np.array_equal(descriptors, expected_descriptors)
    assert np.array_equal(positions, expected_positions)


def test_power_is_applied_after_tfidf_and_before_l2():
    settings = HistogramSettings(tfidf=False, l2=False, power=0.5)
    _, powered = weight_histograms(np.array([[1.0, 1.0]]), np.array([[4.0, 9.0]]), settings)
    assert powered.toarray().tolist() == [[2.0, 3.0]]
    _, normalised = weight_histograms(np.array([[1.0, 1.0]]), np.array([[9.0, 16.0]]),
                                      dataclasses.replace(settings, l2=True))
    assert np.allclose(normalised.toarray(), [[0.6, 0.8]])


def test_tiny_dense_pyramid_run_uses_every_bin(tmp_path):
    _write_dataset(tmp_path, seed=1, train_per_class=5, test_per_class=2)
    config = load_config(None, {
        "vocabulary.k": 6, "pca.components": 3, "orb.sampling": "dense", "orb.dense_step": 10,
        "orb.dense_scales": (1.0,),
        "histograms.pyramid_levels": 2, "histograms.power": 0.5,
    })
    result = run_reference(tmp_path, config, processes=1)
    assert (result["n_train"], result["n_test"]) == (10, 4)
    # 100 x 100, size 8, border 5, step 10: a 9 x 9 grid, minus what ORB drops at its border.
    assert 0 < result["mean_keypoints"] <= 81


def test_the_tone_block_follows_the_words_and_soft_assignment_is_refused(tmp_path):
    tone = ToneSettings(enabled=True, bins=2, weight=0.5)
    joined = append_tone(sparse.csr_matrix([[0.6, 0.8]]), [np.array([0.36, 0.64], np.float32)],
                         tone).toarray()
    assert joined[0].tolist() == pytest.approx([0.6, 0.8, 0.3, 0.4]) and joined.shape == (1, 4)
    _write_dataset(tmp_path, seed=2, train_per_class=5, test_per_class=2)
    config = load_config(None, {"vocabulary.k": 6, "pca.components": 3, "tone.enabled": True})
    assert run_reference(tmp_path, config, processes=1)["n_test"] == 4
    with pytest.raises(ValueError, match="the reference implements neither colour.enabled"):
        run_reference(tmp_path, config.replace(**{"histograms.assignment": "soft"}), 1)
    with pytest.raises(ValueError, match="vocabulary.space = \"bits\" nor"):
        run_reference(tmp_path, config.replace(**{"vocabulary.space": "bits"}), 1)
    # A VLAD run of bytes would otherwise be timed as a word histogram.
    with pytest.raises(ValueError, match="other than \"words\"; leave them at false, "
                                         "\"hard\", \"bytes\" and \"words\" to benchmark"):
        run_reference(tmp_path, config.replace(**{"histograms.encoding": "vlad",
                                                  "histograms.tfidf": False}), 1)


def test_the_reference_classifier_keeps_scikit_learns_own_stop(monkeypatch):
    # Spark's tol (the loss's relative change) is not scikit-learn's (the gradient's
    # largest component): the reference fits to REFERENCE_TOL whatever classifier.tol is.
    import bench.reference as reference
    from bovw.config import ClassifierSettings

    made = []
    real = reference.LogisticRegression
    monkeypatch.setattr(reference, "LogisticRegression",
                        lambda **kwargs: made.append(kwargs) or real(**kwargs))
    rng = np.random.default_rng(0)
    train = rng.normal(size=(40, 3)) + np.repeat([[0, 0, 0], [3, 3, 3]], 20, axis=0)
    labels = np.repeat(["a", "b"], 20)
    predictions = [reference.classify(train, labels, train[::5], ClassifierSettings(tol=tol),
                                      seed=0).tolist() for tol in (1e-3, 0.5)]
    assert [kwargs["tol"] for kwargs in made] == [reference.REFERENCE_TOL] * 2
    assert predictions[0] == predictions[1] == labels[::5].tolist()
