"""bench/warm_session.py: the same run twice in one session, on generated images."""

from bench.warm_session import format_runs, warm_runs
from bovw.image.synthetic import generate_dataset


def test_a_second_run_in_the_same_session_gives_the_same_metrics(spark, test_config, tmp_path):
    generate_dataset(tmp_path / "fruits", classes=3, train_per_class=8, test_per_class=4,
                     seed=2)
    results = warm_runs(spark, test_config, str(tmp_path / "fruits"), tmp_path / "runs", 2)

    assert [result["run"] for result in results] == [1, 2]
    assert results[0]["accuracy"] == results[1]["accuracy"]
    for result in results:
        assert list(result["timings"]) == ["ingest", "descriptors", "vocabulary",
                                           "histograms", "reduction", "classifier"]
        assert result["stages"] == round(sum(
            seconds for stage, seconds in result["timings"].items() if stage != "ingest"), 2)
    assert (tmp_path / "runs" / "run-2" / "summary.json").is_file()


def test_each_run_is_one_line_with_its_stages():
    line = format_runs([{"run": 1, "wall": 12.34, "stages": 10.0, "accuracy": 0.96626,
                         "timings": {"ingest": 0.5, "descriptors": 4.0, "vocabulary": 6.0}}])
    assert line == ("run 1: 12.3s wall, stages 10.0s (ingest 0.5s, descriptors 4.0s, "
                    "vocabulary 6.0s); accuracy 0.9663")
