"""Metrics from a confusion table, checked by hand."""

from __future__ import annotations

from bovw.metrics import classification_metrics


def test_hand_checked_metrics():
    # a: 3 Test images, 2 right, 1 called b.  b: 1 image, right.  c: 2 images, both called a.
    outcomes = [("a", "a", 2), ("a", "b", 1), ("b", "b", 1), ("c", "a", 2)]
    metrics = classification_metrics(["a", "b", "c"], outcomes)
    assert metrics["confusion_matrix"] == [[2, 1, 0], [0, 1, 0], [2, 0, 0]]
    assert metrics["test_images"] == 6
    assert metrics["accuracy"] == 0.5
    # a: precision 2/4, recall 2/3, f1 4/7.  b: precision 1/2, recall 1, f1 2/3.  c: 0.
    assert metrics["per_class"]["a"] == {"precision": 0.5, "recall": 0.666667,
                                         "f1": 0.571429, "support": 3}
    assert metrics["per_class"]["b"] == {"precision": 0.5, "recall": 1.0,
                                         "f1": 0.666667, "support": 1}
    assert metrics["per_class"]["c"]["f1"] == 0.0
    assert metrics["macro_f1"] == round((4 / 7 + 2 / 3 + 0) / 3, 6)
    assert metrics["weighted_recall"] == 0.5
    assert metrics["weighted_precision"] == round((0.5 * 3 + 0.5 * 1) / 6, 6)


def test_labels_outside_the_class_list_are_appended():
    metrics = classification_metrics(["a"], [("a", "a", 1), ("z", "a", 1)])
    assert metrics["classes"] == ["a", "z"]
    assert metrics["confusion_matrix"] == [[1, 0], [1, 0]]
    assert metrics["accuracy"] == 0.5


def test_empty_test_split():
    metrics = classification_metrics(["a", "b"], [])
    assert metrics["accuracy"] == 0.0 and metrics["test_images"] == 0
