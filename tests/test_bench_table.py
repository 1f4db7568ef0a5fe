"""The benchmark comparison table and the harness' small helpers (no Spark, no timing)."""

import pytest

from bench.compare import pipeline_summary, processes_for_master, reference_summary
from bench.spark_run import parse_vmhwm_mb
from bench.table import comparison_rows, markdown_table

PIPELINE_RAW = {
    "timings": {"session_start": 3.0, "descriptors": 8.0, "classifier": 2.5},
    "total_seconds": 20.0,
    "metrics": {"accuracy": 0.69, "macro_f1": 0.68124},
    "counts": {"images": 1000, "rejected": 2},
    "output": "/tmp/out",
    "peak_memory_mb": {"python": 100.0, "jvm": 900.0, "total": 1000.0},
}
REFERENCE_RAW = {
    "timings": {"list_files": 0.25, "descriptors": 4.0, "classifier": 1.0},
    "total_seconds": 8.0,
    "accuracy": 0.7,
    "macro_f1": 0.6875,
    "n_images": 1000,
    "peak_memory_mb": {"self": 400.0, "children": 100.0, "total": 500.0},
}

EXPECTED_TABLE = """\
| metric | pipeline | reference | pipeline/reference |
|:---|---:|---:|---:|
| session_start (s) | 3.00 | - | - |
| descriptors (s) | 8.00 | 4.00 | 2.00 |
| classifier (s) | 2.50 | 1.00 | 2.50 |
| list_files (s) | - | 0.25 | - |
| total wall time (s) | 20.00 | 8.00 | 2.50 |
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
    assert rows[0] == ("list_files (s)", "-", "0.25", "-")
    assert rows[4] == ("images/s", "-", "125", "-")
    assert all(row[1] == "-" and row[3] == "-" for row in rows)


def test_zero_reference_time_has_no_ratio():
    reference = reference_summary({**REFERENCE_RAW, "timings": {"descriptors": 0.0}})
    pipeline = pipeline_summary({**PIPELINE_RAW, "timings": {"descriptors": 1.0}})
    assert comparison_rows(pipeline, reference)[0] == ("descriptors (s)", "1.00", "0.00", "-")


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
