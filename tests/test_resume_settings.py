"""An unfinished run resumes after a change of settings that cannot change its results
(the session's resources: memory, master, partition sizes, log level, ...), as after an
out-of-memory failure; any other difference is refused naming the first setting that
differs."""

from __future__ import annotations

import pytest

from bovw.config import load_config
from bovw.config.differences import Difference, first_nested_difference
from bovw.errors import OutputError

SESSION_CHANGES = {"spark.driver_memory": "2g", "spark.master": "local[1]",
                   "spark.shuffle_partitions": 3, "spark.arrow_batch_size": 64,
                   "spark.open_cost_bytes": 4096, "spark.max_partition_bytes": 2048,
                   "spark.log_level": "WARN", "spark.class_archive_dir": "",
                   "spark.jit_threshold_scale": 1, "spark.app_name": "again",
                   "spark.conf.spark.executor.memory": "3g"}


def _spec(changes: dict | None = None) -> dict:
    config = load_config(None, {"vocabulary.k": 20, **(changes or {})})
    return {"input": "/data", "descriptors_from": None, "config": config.to_dict()}


def test_session_settings_do_not_block_a_resume(spark, tmp_path):
    from bovw.pipeline.layout import RunLayout, prepare_output

    layout = RunLayout(str(tmp_path / "run"))
    with prepare_output(spark, layout, _spec(), overwrite=False):
        pass
    with prepare_output(spark, layout, _spec(SESSION_CHANGES), overwrite=False) as output:
        assert output.work == layout.root


@pytest.mark.parametrize(("changes", "said"), [
    ({"spark.driver_memory": "2g", "vocabulary.k": 30}, "vocabulary.k 20 there, 30 here"),
    ({"orb.dense_scales": "1.0,2.0"}, "orb.dense_scales 1.0 there, 1.0,2.0 here"),
    # a spark.conf property that may change results still blocks
    ({"spark.conf.spark.sql.ansi.enabled": "false"},
     "spark.conf.spark.sql.ansi.enabled not set there, false here"),
])
def test_other_differences_are_named(spark, tmp_path, changes, said):
    from bovw.pipeline.layout import RunLayout, prepare_output

    layout = RunLayout(str(tmp_path / "run"))
    with prepare_output(spark, layout, _spec(), overwrite=False):
        pass
    with pytest.raises(OutputError) as raised:
        prepare_output(spark, layout, _spec(changes), overwrite=False)
    assert str(raised.value) == (
        f"output {layout.root} holds an unfinished run with a different input or "
        f"configuration ({said}); use the same ones to resume it, or pass --overwrite")


def test_another_input_is_named(spark, tmp_path):
    from bovw.pipeline.layout import RunLayout, prepare_output

    layout = RunLayout(str(tmp_path / "run"))
    with prepare_output(spark, layout, _spec(), overwrite=False):
        pass
    with pytest.raises(OutputError, match=r"\(input /data there, /other here\)"):
        prepare_output(spark, layout, {**_spec(), "input": "/other"}, overwrite=False)


def test_first_nested_difference():
    assert first_nested_difference({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}) == \
        Difference("a.c", 2, 3)
    assert first_nested_difference({"a": {"b": 1}}, {"a": {"b": 1, "d": 0}}) == \
        Difference("a.d", None, 0)
    assert first_nested_difference({"a": {"b": 1, "m": 1}}, {"a": {"b": 1, "m": 2}},
                            ignore=("a.m",)) is None
    assert first_nested_difference({"a": {"b": 1}}, {"a": {"b": 1}}) is None
