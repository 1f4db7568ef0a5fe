"""The benchmark comparison table and the harness' small helpers (no Spark, no timing)."""

import pytest

from bench.compare import (
    comparison_columns,
    descriptor_verdicts,
    naive_summary,
    paired_verdict,
    paired_walls,
    parse_args,
    parse_sizes,
    pipeline_summary,
    processes_for_master,
    reference_summary,
)
from bench.spark_run import parse_vmhwm_mb
from bench.table import comparison_rows, markdown, markdown_table, table_rows
from bovw.config import ConfigError

PIPELINE_RAW = {
    "timings": {"start": 3.0, "descriptors": 8.0, "classifier": 2.5},
    "total_seconds": 20.0,
    "cpu_seconds": 30.0,
    "metrics": {"accuracy": 0.69, "macro_f1": 0.68124},
    "counts": {"images": 1000, "rejected": 2},
    "output": "/tmp/out",
    "peak_memory_mb": {"python": 100.0, "jvm": 900.0, "total": 1000.0},
}
REFERENCE_RAW = {
    "timings": {"ingest": 0.25, "descriptors": 4.0, "classifier": 1.0},
    "total_seconds": 8.0,
    "accuracy": 0.7,
    "macro_f1": 0.6875,
    "n_images": 1000,
    "peak_memory_mb": {"self": 400.0, "children": 100.0, "total": 500.0},
    "process": {"wall_seconds": 8.0, "cpu_seconds": 12.0},
}

EXPECTED_TABLE = """\
| metric | pipeline | reference | pipeline/reference |
|:---|---:|---:|---:|
| images | 1000 | 1000 | 1.00 |
| start (s) | 3.00 | - | - |
| descriptors (s) | 8.00 | 4.00 | 2.00 |
| classifier (s) | 2.50 | 1.00 | 2.50 |
| ingest (s) | - | 0.25 | - |
| descriptors stage (images/s) | 125 | 250 | 0.50 |
| total wall time (s) | 20.00 | 8.00 | 2.50 |
| CPU time, every process (s) | 30.00 | 12.00 | 2.50 |
| images/s | 50 | 125 | 0.40 |
| accuracy | 0.6900 | 0.7000 | 0.99 |
| macro F1 | 0.6812 | 0.6875 | 0.99 |
| peak memory, Python process (MB) | 100 | 400 | 0.25 |
| peak memory, driver JVM / largest worker (MB) | 900 | 100 | 9.00 |
| peak driver memory, total (MB) | 1000 | 500 | 2.00 |
"""


def test_table_compares_both_sides_stage_by_stage():
    rows = comparison_rows(pipeline_summary(PIPELINE_RAW), reference_summary(REFERENCE_RAW))
    assert markdown_table(rows) == EXPECTED_TABLE


def test_reference_only_table_leaves_the_pipeline_column_empty():
    rows = comparison_rows(None, reference_summary(REFERENCE_RAW))
    assert rows[1] == ("ingest (s)", "-", "0.25", "-")
    assert rows[7] == ("images/s", "-", "125", "-")
    assert all(row[1] == "-" and row[3] == "-" for row in rows)


def test_reference_total_is_its_whole_process():
    # The in-process total leaves out the interpreter, the imports and the pool's start.
    raw = {**REFERENCE_RAW, "total_seconds": 6.5}
    assert reference_summary(raw)["total_seconds"] == 8.0
    assert reference_summary({**raw, "process": {}})["total_seconds"] == 6.5


def test_zero_reference_time_has_no_ratio():
    reference = reference_summary({**REFERENCE_RAW, "timings": {"descriptors": 0.0}})
    pipeline = pipeline_summary({**PIPELINE_RAW, "timings": {"descriptors": 1.0}})
    assert comparison_rows(pipeline, reference)[1] == ("descriptors (s)", "1.00", "0.00", "-")


@pytest.mark.parametrize(
    ("master", "expected"),
    [("local", 1), ("local[2]", 2), ("local[3, 4]", 3), ("local[*]", 8), ("spark://h:7077", 8)],
)
def test_reference_processes_follow_the_master(master, expected):
    assert processes_for_master(master, cpu_count=8) == expected


def test_vmhwm_is_read_in_megabytes():
    status = "Name:\tjava\nVmPeak:\t 9000000 kB\nVmHWM:\t  524288 kB\nVmRSS:\t 1000 kB\n"
    assert parse_vmhwm_mb(status) == 512.0


def test_missing_vmhwm_is_a_clear_error():
    with pytest.raises(ValueError, match=r"^no VmHWM line in /proc status"):
        parse_vmhwm_mb("Name:\tjava\n")


NAIVE_STOPPED = {
    "timings": {"session_start": 4.0, "ingest": 2.0, "descriptors": 30.0},
    "counts": {"images": 1000, "descriptors": 300000},
    "metrics": {},
    "status": "timed out",
    "stopped_in": "vocabulary",
    "stopped_stage_seconds": 64.0,
    "total_seconds": 100.0,
    "peak_memory_mb": {"python": 200.0, "jvm": 2000.0, "total": 2200.0},
}


def test_two_sizes_and_a_stopped_naive_run_in_one_table():
    pipeline, reference = pipeline_summary(PIPELINE_RAW), reference_summary(REFERENCE_RAW)
    ten_times = {**pipeline, "images": 10000, "total_seconds": 100.0}
    runs = {1: {"pipeline": pipeline, "reference": reference},
            10: {"pipeline": ten_times, "reference": None}}
    naive = {"naive": naive_summary(NAIVE_STOPPED), "pipeline": pipeline, "label": "x1",
             "same_as_size": 1}
    table = table_rows(comparison_columns([1, 10], runs, naive))
    assert table[0] == (
        "metric", "pipeline x1", "reference x1", "pipeline/reference x1", "pipeline x10",
        "reference x10", "pipeline/reference x10", "naive, x1", "naive/pipeline (times slower)",
    )
    rows = {row[0]: row[1:] for row in table[1:]}
    assert rows["images"] == ("1000", "1000", "1.00", "10000", "-", "-", "1000", "1.00")
    # Stopped during the vocabulary: its time so far and its total are lower bounds.
    assert rows["vocabulary (s)"] == ("-", "-", "-", "-", "-", "-", ">=64.00", "-")
    assert rows["descriptors (s)"][6:] == ("30.00", "3.75")
    assert rows["total wall time (s)"][6:] == (">=100.00", ">=5.00")
    assert rows["images/s"][6:] == ("<=10", "<=0.20")
    assert rows["accuracy"][6:] == ("-", "-")
    assert markdown(table).splitlines()[1] == "|:---|" + "---:|" * 8


def test_a_naive_run_on_a_sample_brings_its_own_pipeline_column():
    pipeline = pipeline_summary(PIPELINE_RAW)
    naive = {"naive": naive_summary({**NAIVE_STOPPED, "status": "finished"}),
             "pipeline": pipeline, "label": "sample of 300 images", "same_as_size": None}
    columns = comparison_columns([], {}, naive)
    assert [column.header for column in columns] == [
        "pipeline, sample of 300 images", "naive, sample of 300 images",
        "naive/pipeline (times slower)",
    ]
    rows = {row[0]: row[1:] for row in table_rows(columns)[1:]}
    assert rows["total wall time (s)"] == ("20.00", "100.00", "5.00")


def test_descriptor_verdict_reads_the_target_off_the_stage_ratio():
    pipeline = pipeline_summary(PIPELINE_RAW)
    runs = {1: {"pipeline": pipeline, "reference": reference_summary(REFERENCE_RAW)},
            10: {"pipeline": {**pipeline, "timings": {"ingest": 6.0, "descriptors": 44.0}},
                 "reference": {"timings": {"descriptors": 40.0}}}}
    assert descriptor_verdicts([1, 10], runs, processes=2) == [
        "x1: descriptors stage 8.00 s in Spark vs 4.00 s raw OpenCV (decode + ORB, Pool of 2): "
        "2.00x, target <= 1.2x missed; without the listing 8.00 s, 2.00x.",
        "x10: descriptors stage 44.00 s in Spark vs 40.00 s raw OpenCV (decode + ORB, Pool of "
        "2): 1.10x, target <= 1.2x met; without the listing 38.00 s, 0.95x.",
    ]


def test_sizes_are_distinct_multiples():
    assert parse_sizes("1,10") == [1, 10]
    for bad in ("0,1", "1,1", "x", ""):
        with pytest.raises(ConfigError, match=r"^--sizes must"):
            parse_sizes(bad)


def _walls(pipeline: float, reference: float) -> tuple[dict, dict]:
    return {"total_seconds": pipeline}, {"total_seconds": reference}


def test_paired_walls_takes_the_median_of_the_pair_by_pair_ratios():
    # Ratios 2.0, 1.5, 3.0: a slow machine in the third pair moves both sides.
    paired = paired_walls([_walls(40.0, 20.0), _walls(30.0, 20.0), _walls(90.0, 30.0)])
    assert paired == {"pairs": 3, "pipeline_median": 40.0, "reference_median": 20.0,
                      "ratio_median": 2.0, "ratio_min": 1.5, "ratio_max": 3.0}
    assert paired_verdict(1, paired) == (
        "x1, 3 pairs run in turn: pipeline median 40.00 s, reference median 20.00 s; "
        "paired wall ratio median 2.00x (min 1.50x, max 3.00x). The table's columns are "
        "the first pair.")


def test_paired_walls_leaves_out_a_pair_with_a_failed_side():
    assert paired_walls([_walls(40.0, 20.0), (None, {"total_seconds": 1.0})])["pairs"] == 1
    assert paired_walls([(None, None)]) is None
    assert paired_verdict(10, None) == "x10: no pair finished on both sides"


def test_repeat_must_be_at_least_one(capsys):
    assert parse_args(["data", "--repeat", "3"]).repeat == 3
    with pytest.raises(SystemExit):
        parse_args(["data", "--repeat", "0"])
    assert "--repeat must be >= 1 (got 0)" in capsys.readouterr().err
