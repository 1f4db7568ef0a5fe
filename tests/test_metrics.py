"""Metrics from a confusion table, checked by hand."""

from __future__ import annotations

from bovw.pipeline.metrics import FitCheck, classification_metrics


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


def test_predicted_labels_outside_the_class_list_are_appended():
    metrics = classification_metrics(["a"], [("a", "a", 1), ("a", "z", 1)])
    assert metrics["classes"] == ["a", "z"]
    assert metrics["confusion_matrix"] == [[1, 1], [0, 0]]
    assert metrics["accuracy"] == 0.5


def test_a_class_only_in_test_is_reported_apart_not_scored():
    # Issue 16.7: one Kiwi Test image (no Kiwi in Training) took macro F1 from 1 to 0.5
    # and accuracy from 1 to 0.75, though no model trained on a and b can name a Kiwi.
    outcomes = [("a", "a", 2), ("b", "b", 1), ("Kiwi", "a", 1)]
    metrics = classification_metrics(["a", "b"], outcomes)
    assert metrics["test_only_classes"] == ["Kiwi"]
    assert metrics["test_only_images"] == 1
    assert metrics["test_only_predictions"] == {"Kiwi": {"a": 1}}
    assert metrics["classes"] == ["a", "b"]
    assert metrics["confusion_matrix"] == [[2, 0], [0, 1]]
    assert "Kiwi" not in metrics["per_class"]
    assert (metrics["test_images"], metrics["accuracy"], metrics["macro_f1"]) == (3, 1.0, 1.0)
    assert metrics["weighted_f1"] == 1.0
    assert metrics == {**classification_metrics(["a", "b"], outcomes[:2]),
                       "test_only_classes": ["Kiwi"], "test_only_images": 1,
                       "test_only_predictions": {"Kiwi": {"a": 1}}}


def test_without_test_only_classes_the_lists_are_empty():
    metrics = classification_metrics(["a"], [("a", "a", 3)])
    assert (metrics["test_only_classes"], metrics["test_only_images"],
            metrics["test_only_predictions"]) == ([], 0, {})


def test_empty_test_split():
    metrics = classification_metrics(["a", "b"], [])
    assert metrics["accuracy"] == 0.0 and metrics["test_images"] == 0


# ---------------------------------------------------------------- the classifier's fit check

def _balanced(classes: str, per_class: int, predicted_as=None):
    """(true, predicted, count) for `per_class` Training rows of each class, each predicted
    as `predicted_as(true)` (its own class by default)."""
    return [(c, (predicted_as or (lambda t: t))(c), per_class) for c in classes]


def test_a_fit_that_never_left_its_start_is_refused_with_the_cause():
    # The chance-level k=10 point of issue 12: LBFGS gave up after 2 iterations at log(6),
    # every one of 360 Training images called the first class.
    check = FitCheck.from_outcomes([1.791759, 1.791759, 1.791759], 2, 200,
                                   _balanced("ABCDEF", 60, lambda _t: "A"))
    assert (check.training_rows, check.training_correct) == (360, 60)
    assert check.chance == 1 / 6 and check.predicted == (("A", 360),)
    assert check.problem() == (
        "the classifier did not train: LBFGS stopped after 2 of 200 iterations with the loss "
        "at 1.792 (start 1.792); it predicts A for all 360 Training images; Training "
        "accuracy 16.7% (chance 16.7%); fix: the optimiser made no progress on these "
        "features: lower classifier.reg_param, or check that the Training images of "
        "different classes differ")


def test_a_fit_that_trained_passes_and_reports_its_numbers():
    check = FitCheck.from_outcomes([1.0986, 0.5, 0.01], 41, 200, _balanced("abc", 10))
    assert check.problem() is None
    assert check.to_dict() == {"iterations": 41, "max_iter": 200, "loss_start": 1.0986,
                               "loss_end": 0.01, "training_images": 30,
                               "training_accuracy": 1.0, "training_chance": 0.333333,
                               "classes_predicted": 3}


def test_a_fit_stopped_by_max_iter_says_to_raise_it():
    # The loss fell by 0.3%, not the 1% a model that uses its features achieves.
    check = FitCheck.from_outcomes([1.0, 0.997], 1, 1, _balanced("abc", 10))
    assert check.problem().endswith("fix: raise classifier.max_iter (now 1)")


def test_training_accuracy_near_chance_is_refused():
    # 3 classes of 30: chance 1/3, limit 1/3 + 3 * sqrt((1/3)(2/3)/90) = 0.4824.
    guesses = [("a", "a", 30), ("b", "a", 30), ("c", "c", 13), ("c", "b", 17)]  # 43/90
    check = FitCheck.from_outcomes([1.0986, 0.9], 12, 200, guesses)
    assert round(check.chance_limit, 4) == 0.4824
    assert "Training accuracy 47.8% (chance 33.3%); fix: the features do not tell the " \
           "Training classes apart" in check.problem()
    better = [("a", "a", 30), ("b", "a", 30), ("c", "c", 14), ("c", "b", 16)]  # 44/90
    assert FitCheck.from_outcomes([1.0986, 0.9], 12, 200, better).problem() is None


def test_a_perfect_fit_on_a_few_training_images_is_not_near_chance():
    # 3 + 2 images: chance 0.6, limit 0.6 + 3 * sqrt(0.24 / 5) = 1.257, above any accuracy.
    check = FitCheck.from_outcomes([0.673, 0.05], 9, 200, [("a", "a", 3), ("b", "b", 2)])
    assert round(check.chance_limit, 3) == 1.257
    assert check.problem() is None
    one_wrong = [("a", "a", 3), ("b", "b", 1), ("b", "a", 1)]
    assert "Training accuracy 80.0% (chance 60.0%)" in FitCheck.from_outcomes(
        [0.673, 0.05], 9, 200, one_wrong).problem()


def test_a_single_training_class_is_not_a_failed_fit():
    assert FitCheck.from_outcomes([0.0], 0, 200, [("a", "a", 5)]).problem() is None
