"""Classification metrics from a confusion table; pure Python, no Spark."""

from __future__ import annotations

from collections.abc import Iterable


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def classification_metrics(
    classes: list[str], outcomes: Iterable[tuple[str, str, int]]
) -> dict:
    """Metrics from (true label, predicted label, count) triples.

    `classes` fixes the order of the per-class table and the confusion matrix (rows are
    true labels, columns predictions); labels seen in `outcomes` but not in `classes`
    are appended in sorted order. Macro averages weigh every class with Test images
    equally; weighted averages weigh classes by their number of Test images.
    """
    counts: dict[tuple[str, str], int] = {}
    for true, predicted, count in outcomes:
        counts[(true, predicted)] = counts.get((true, predicted), 0) + int(count)
    seen = {label for pair in counts for label in pair}
    order = list(classes) + sorted(seen - set(classes))
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
    }
