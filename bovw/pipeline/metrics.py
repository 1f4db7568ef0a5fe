"""Classification metrics from a confusion table, and the classifier's check of its own fit;
pure Python, no Spark."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["CHANCE_MARGIN", "MIN_LOSS_REDUCTION", "FitCheck", "classification_metrics",
           "test_only_warning"]

# The optimiser starts from the class priors (zero coefficients), whose loss is the
# entropy of the Training labels; features that tell classes apart cut it by far more
# than this (fruits360-dev: by 64% at k=5, 96-98% from k=20 up). Less: nothing learned.
MIN_LOSS_REDUCTION = 0.01
# Standard errors above the majority share within which a Training accuracy counts as
# chance: a model that ignores its features scores at most the majority share, and luck
# alone passes 3 standard errors of a proportion about once in a thousand.
CHANCE_MARGIN = 3.0


def test_only_warning(classes: Sequence[str]) -> str:
    """The console warning for Test images of `classes`, which have no Training images."""
    return ("warning: Test images of classes without Training images: "
            f"{', '.join(classes)}; the model cannot predict these classes, so their images "
            "are left out of accuracy and F1 and reported apart (metrics.json: "
            "test_only_classes)")


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def classification_metrics(
    classes: list[str], outcomes: Iterable[tuple[str, str, int]]
) -> dict:
    """Metrics from (true label, predicted label, count) triples.

    `classes` are the classes the classifier was trained on; they fix the order of the
    per-class table and the confusion matrix (rows are true labels, columns predictions).
    Test images of a class not among them (a class found only in Test) cannot be
    classified right by any model trained on these classes: they are left out of every
    headline number (test_images, accuracy, macro and weighted averages, per-class table,
    confusion matrix) and reported apart: `test_only_classes` (sorted),
    `test_only_images`, and `test_only_predictions` (class -> {predicted class: count}).
    Predicted labels outside `classes` are appended in sorted order. Macro averages weigh
    every class with Test images equally; weighted averages weigh classes by their number
    of Test images.
    """
    known = set(classes)
    counts: dict[tuple[str, str], int] = {}
    test_only: dict[str, dict[str, int]] = {}
    for true, predicted, count in outcomes:
        if true in known:
            counts[(true, predicted)] = counts.get((true, predicted), 0) + int(count)
        else:
            guesses = test_only.setdefault(true, {})
            guesses[predicted] = guesses.get(predicted, 0) + int(count)
    seen = {predicted for _true, predicted in counts}
    order = list(classes) + sorted(seen - known)
    index = {label: i for i, label in enumerate(order)}
    matrix = [[0] * len(order) for _ in order]
    for (true, predicted), count in counts.items():
        matrix[index[true]][index[predicted]] += count

    total = sum(map(sum, matrix))
    per_class = {}
    for i, label in enumerate(order):
        support = sum(matrix[i])
        predicted = sum(row[i] for row in matrix)
        correct = matrix[i][i]
        precision = _ratio(correct, predicted)
        recall = _ratio(correct, support)
        per_class[label] = {
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "support": support,
        }
    with_support = [m for m in per_class.values() if m["support"] > 0]

    def weighted(key: str) -> float:
        return round(_ratio(sum(m[key] * m["support"] for m in with_support), total), 6)

    rounded = {
        label: {key: round(value, 6) if key != "support" else value for key, value in m.items()}
        for label, m in per_class.items()
    }
    return {
        "test_images": total,
        "accuracy": round(_ratio(sum(matrix[i][i] for i in range(len(order))), total), 6),
        "macro_f1": round(_ratio(sum(m["f1"] for m in with_support), len(with_support)), 6),
        "weighted_precision": weighted("precision"),
        "weighted_recall": weighted("recall"),
        "weighted_f1": weighted("f1"),
        "classes": order,
        "per_class": rounded,
        "confusion_matrix": matrix,
        "test_only_classes": sorted(test_only),
        "test_only_images": sum(sum(guesses.values()) for guesses in test_only.values()),
        "test_only_predictions": {label: dict(sorted(test_only[label].items()))
                                  for label in sorted(test_only)},
    }


@dataclass(frozen=True)
class FitCheck:
    """What a classifier's own Training run says about whether it trained.

    `predicted` holds (class, Training rows predicted as it) pairs, `class_sizes` the
    Training rows of each class; losses are the optimiser's objective at its start and end.
    """

    iterations: int
    max_iter: int
    loss_start: float
    loss_end: float
    training_rows: int
    training_correct: int
    class_sizes: tuple[tuple[str, int], ...]
    predicted: tuple[tuple[str, int], ...]

    @classmethod
    def from_outcomes(cls, objective_history: Sequence[float], iterations: int, max_iter: int,
                      outcomes: Iterable[tuple[str, str, int]]) -> FitCheck:
        """From the optimiser's objective history and (true, predicted, count) Training triples."""
        sizes: dict[str, int] = {}
        predicted: dict[str, int] = {}
        correct = 0
        for true, guess, count in outcomes:
            sizes[true] = sizes.get(true, 0) + int(count)
            predicted[guess] = predicted.get(guess, 0) + int(count)
            correct += int(count) if true == guess else 0
        history = list(objective_history) or [math.nan]
        return cls(int(iterations), int(max_iter), float(history[0]), float(history[-1]),
                   sum(sizes.values()), correct, tuple(sorted(sizes.items())),
                   tuple(sorted(predicted.items())))

    @property
    def training_accuracy(self) -> float:
        """The share of the Training images the classifier gets right."""
        return _ratio(self.training_correct, self.training_rows)

    @property
    def chance(self) -> float:
        """The Training accuracy of always answering the most frequent class."""
        return _ratio(max((n for _c, n in self.class_sizes), default=0), self.training_rows)

    @property
    def chance_limit(self) -> float:
        """The Training accuracy at or below which the model is no better than chance."""
        p = self.chance
        return p + CHANCE_MARGIN * math.sqrt(p * (1 - p) / max(self.training_rows, 1))

    def problem(self) -> str | None:
        """None for a model that trained; else one line: what is wrong and what to do."""
        if len(self.class_sizes) < 2:
            return None  # one class: nothing to learn, Spark returns a constant model
        stalled = not self.loss_end <= (1 - MIN_LOSS_REDUCTION) * self.loss_start
        one_class = len(self.predicted) == 1
        # On a handful of images the limit passes 100%; a model that gets every Training
        # image right has used its features, however few there are.
        near_chance = (self.training_accuracy <= self.chance_limit
                       and self.training_correct < self.training_rows)
        if not (stalled or one_class or near_chance):
            return None
        facts = [f"LBFGS stopped after {self.iterations} of {self.max_iter} iterations with "
                 f"the loss at {self.loss_end:.4g} (start {self.loss_start:.4g})"]
        if one_class:
            facts.append(f"it predicts {self.predicted[0][0]} for all {self.training_rows} "
                         "Training images")
        facts.append(f"Training accuracy {100 * self.training_accuracy:.1f}% "
                     f"(chance {100 * self.chance:.1f}%)")
        if self.iterations >= self.max_iter:
            fix = f"raise classifier.max_iter (now {self.max_iter})"
        elif stalled:
            fix = ("the optimiser made no progress on these features: lower "
                   "classifier.reg_param, or check that the Training images of different "
                   "classes differ")
        else:
            fix = ("the features do not tell the Training classes apart: check the Training "
                   "images and labels, or try a larger vocabulary.k")
        return f"the classifier did not train: {'; '.join(facts)}; fix: {fix}"

    def to_dict(self) -> dict:
        """The numbers for metrics.json."""
        return {"iterations": self.iterations, "max_iter": self.max_iter,
                "loss_start": round(self.loss_start, 6), "loss_end": round(self.loss_end, 6),
                "training_images": self.training_rows,
                "training_accuracy": round(self.training_accuracy, 6),
                "training_chance": round(self.chance, 6),
                "classes_predicted": len(self.predicted)}
