"""The report's confusion matrix at any number of classes (bovw.report.confusion): the most
confused pairs, exactly, and a heat map that numbers its classes and fits the page when
there are too many to name. Pure: no Spark."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from bovw.report.confusion import (
    NAMED_CLASSES_MAX,
    Confusion,
    axis_ticks,
    class_numbers,
    confused_pairs_body,
    most_confused,
)
from bovw.report.gather import RunData
from bovw.report.pages import per_class_table, run_sections
from bovw.report.plots import plot_confusion
from bovw.summary import HeadlineMetrics, ImageCounts, Reduction, RunSummary

CLASSES = ["apple", "banana", "cherry"]
# Rows: true class; columns: predicted. Off the diagonal: apple->banana 2 (of 8 apples),
# apple->cherry 1, cherry->apple 2 (of 8), cherry->banana 2 (of 8); banana all right.
MATRIX = [[5, 2, 1],
          [0, 3, 0],
          [2, 2, 4]]


def test_most_confused_pairs_are_ordered_by_images_then_share_then_class_order():
    pairs, count = most_confused(CLASSES, MATRIX)
    assert count == 4
    assert pairs == [Confusion("apple", "banana", 2, 0.25),
                     Confusion("cherry", "apple", 2, 0.25),
                     Confusion("cherry", "banana", 2, 0.25),
                     Confusion("apple", "cherry", 1, 0.125)]
    # A larger share wins a tie in images: 2 of 3 bananas before 2 of 8 apples.
    pairs, _ = most_confused(CLASSES, [[6, 2, 0], [2, 1, 0], [0, 0, 5]])
    assert pairs == [Confusion("banana", "apple", 2, 2 / 3), Confusion("apple", "banana", 2, 0.25)]


def test_most_confused_counts_every_pair_beyond_its_limit():
    pairs, count = most_confused(CLASSES, MATRIX, limit=2)
    assert [(p.true, p.predicted) for p in pairs] == [("apple", "banana"), ("cherry", "apple")]
    assert count == 4
    assert most_confused(CLASSES, np.diag([3, 4, 5]).tolist()) == ([], 0)
    assert most_confused([], []) == ([], 0)


@pytest.mark.parametrize("matrix", [
    [[1, 2], [3, 4]],                        # 2 x 2 for 3 classes
    [[1, 2, 3], [4, 5, 6], [7, 8]],          # a short row
    [1, 2, 3, 4, 5, 6, 7, 8, 9],             # flat
    [["a", "b", "c"], [1, 2, 3], [4, 5, 6]],  # not numbers
])
def test_a_matrix_not_n_by_n_counts_is_refused(matrix):
    with pytest.raises(ValueError, match=r"^a confusion matrix of 3 classes must be 3 x 3 "
                                         r"counts$"):
        most_confused(CLASSES, matrix)


def test_a_negative_count_is_refused():
    with pytest.raises(ValueError, match="has a negative one"):
        most_confused(CLASSES, [[1, -1, 0], [0, 1, 0], [0, 0, 1]])


def test_the_section_says_how_many_pairs_it_shows_or_that_there_are_none():
    body = confused_pairs_body(CLASSES, MATRIX)
    assert "All 4 pairs" in body
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", body)
    assert cells[:4] == ["apple", "banana", "2", "25.00%"]
    assert cells[-4:] == ["apple", "cherry", "1", "12.50%"]
    assert "The 2 largest of 4 pairs" in confused_pairs_body(CLASSES, MATRIX, limit=2)
    # One stray image: "The one pair", not "All 1 pairs".
    assert "The one pair (true class" in confused_pairs_body(
        CLASSES, [[3, 1, 0], [0, 4, 0], [0, 0, 5]])
    assert confused_pairs_body(CLASSES, np.diag([3, 4, 5]).tolist()) == (
        '<p class="note">Every scored Test image was predicted as its own class.</p>')


def names(count: int) -> list[str]:
    return [f"Fruit {i:03d}" for i in range(count)]


def test_up_to_forty_classes_are_named_beyond_they_are_numbered_every_ten():
    assert axis_ticks(names(NAMED_CLASSES_MAX)) == (list(range(40)), names(40))
    assert axis_ticks(names(41)) == ([0, 9, 19, 29, 39], ["1", "10", "20", "30", "40"])
    positions, labels = axis_ticks(names(131))
    assert labels[-1] == "130" and positions[-1] == 129


def test_per_class_tables_number_their_rows_as_the_heat_map_does():
    rows, marks = [[name, "1.0"] for name in names(41)], [["", ""]] * 41
    headers, numbered_rows, numbered_marks = class_numbers(["class", "F1"], rows, marks)
    assert headers == ["#", "class", "F1"]
    assert numbered_rows[0] == [1, "Fruit 000", "1.0"]
    assert numbered_rows[-1][:2] == [41, "Fruit 040"]
    assert numbered_marks[0] == ["", "", ""]
    assert class_numbers(["class", "F1"], rows[:40], marks[:40])[0] == ["class", "F1"]


def heat_map_size(count: int) -> tuple[int, int]:
    rng = np.random.default_rng(0)
    matrix = np.diag(rng.integers(20, 40, count)) + (rng.random((count, count)) < 0.02)
    return Image.open(io.BytesIO(plot_confusion(names(count), matrix.tolist()))).size


def test_a_heat_map_of_131_classes_fits_the_page():
    # The page shows plots at most 1,176 px wide (1,240 less its padding); named, 131
    # classes made a 4,776 px image shown at a quarter of its size.
    width, height = heat_map_size(131)
    assert width <= 1176 and height <= 1176
    assert heat_map_size(24)[0] > 1000  # named, counts written: as wide as it needs


def run_page(count: int, matrix) -> dict[str, str]:
    classes = names(count)
    metrics = {"classes": classes, "confusion_matrix": matrix,
               "per_class": {name: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3}
                             for name in classes}}
    summary = RunSummary("/run", ImageCounts(), Reduction(), HeadlineMetrics())
    return {s.title: s.body for s in run_sections(RunData("/run", summary, metrics))}


def test_a_run_report_names_its_most_confused_classes_and_numbers_many():
    matrix = (3 * np.eye(41, dtype=int)).tolist()
    matrix[40][2] = 1
    sections = run_page(41, matrix)
    assert list(sections)[:4] == ["Metrics", "Per class (Test)", "Confusion matrix",
                                  "Most confused classes (Test)"]
    assert "<th>#</th><th>class</th>" in sections["Per class (Test)"]
    assert "<td>41</td><td class=\"text\">Fruit 040</td>" in sections["Per class (Test)"]
    assert re.findall(r"<td[^>]*>([^<]*)</td>", sections["Most confused classes (Test)"]) == [
        "Fruit 040", "Fruit 002", "1", "25.00%"]
    few = run_page(3, np.diag([3, 3, 3]).tolist())
    assert "<th>#</th>" not in few["Per class (Test)"]
    assert "predicted as its own class" in few["Most confused classes (Test)"]


def test_a_comparison_numbers_its_per_class_table_beyond_forty_classes():
    summary = RunSummary("/run", ImageCounts(), Reduction(), HeadlineMetrics())
    runs = [(name, RunData("/" + name, summary, {"classes": names(41), "per_class": {}}))
            for name in ("words", "cnn")]
    assert "<th>#</th><th>class</th><th>words</th><th>cnn</th>" in per_class_table(runs)
    assert "<th>#</th>" not in per_class_table(
        [(n, RunData("/" + n, summary, {"classes": names(40), "per_class": {}}))
         for n in ("words", "cnn")])


def test_the_sample_grid_says_its_order_and_how_the_wrong_ones_are_chosen():
    # It said "wrongly classified (red, taken first)", read as shown first; the grid is in
    # class order (bovw.report.gather sorts the chosen images by label and path).
    from bovw.report.pages import sample_grid

    grid = sample_grid([("a.jpg", "Apple", "Kiwi", None), ("b.jpg", "Kiwi", "Kiwi", None)])
    assert grid.startswith('<p class="note">2 Test images in class order: 1 wrongly classified '
                           "(red; up to half the images are chosen among them) and 1 "
                           "classified right.</p>")
