"""--overwrite replaces only bovw's own outputs, and only once the new one is complete; one
command per output at a time (a lease that a killed command cannot hold forever)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bovw.cli import main
from bovw.errors import OutputError, OutputInUseError, StorageError
from bovw.image.synthetic import generate_dataset
from bovw.pipeline import run as pipeline
from bovw.pipeline.layout import RunLayout, prepare_output, prepare_spec_folder
from bovw.spark import leases, storage
from tests.test_pipeline import spark_flags

THESIS = b"Chapter 1\n\xe2\x80\x94 four years of work\n"


def run_flags(k: int) -> list[str]:
    return ["--k", str(k), "--pca-components", "5", "--set", "vocabulary.partitions=2",
            *spark_flags()]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below `folder` and the hash of its bytes."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fruits")
    generate_dataset(root, classes=3, train_per_class=8, test_per_class=3, seed=0)
    return root


@pytest.fixture(scope="module")
def finished_run(spark, dataset, tmp_path_factory) -> Path:
    """A finished run with its report and its exported model.npz (k=12)."""
    output = tmp_path_factory.mktemp("finished") / "run"
    assert main(["run", "--input", str(dataset), "--output", str(output), *run_flags(12)]) == 0
    assert main(["export", str(output), *spark_flags()]) == 0
    return output


# ------------------------------------------------------- only bovw's outputs are replaced

@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_folder_bovw_did_not_make_is_never_replaced(dataset, tmp_path, capsys, overwrite):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.txt").write_bytes(THESIS)
    code = main(["run", "--input", str(dataset), "--output", str(folder), *overwrite,
                 *run_flags(12)])
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"bovw: error: output {folder} exists and is not a bovw run folder (it holds "
        "thesis.txt); bovw never replaces it, with or without --overwrite: choose an empty "
        "or new folder"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine"]
    assert [path.name for path in folder.iterdir()] == ["thesis.txt"]
    assert (folder / "thesis.txt").read_bytes() == THESIS


def test_relative_paths_are_said_absolute(spark, dataset, tmp_path, capsys, monkeypatch):
    # `bovw run` said the paths as typed, where report and export said them absolute.
    from bovw.cli.common import location, resolved

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.txt").write_bytes(THESIS)
    monkeypatch.chdir(tmp_path)
    relative_input = os.path.relpath(dataset, tmp_path)
    assert main(["run", "--input", relative_input, "--output", "mine", *run_flags(12)]) == 1
    assert capsys.readouterr().err.startswith(f"bovw: error: output {folder} exists and is "
                                              "not a bovw run folder")
    assert (location("mine/../mine/"), location(relative_input)) == (str(folder), str(dataset))
    assert location("s3://bucket/runs/") == "s3a://bucket/runs/"
    # An output said relative is resolved where Spark writes it, a dot left as given (to be
    # refused: it names no folder of its own, rather than the working folder's name).
    assert resolved(spark, "runs/x", "s3a://bucket/x", None, ".", "runs/..") == [
        str(tmp_path / "runs" / "x"), "s3a://bucket/x", None, ".", "runs/.."]
    assert main(["run", "--input", relative_input, "--output", ".", *run_flags(12)]) == 1
    assert "names no folder of its own" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "sweep", "compare"])
def test_the_filesystem_root_as_output_is_refused_in_one_line(dataset, capsys, command):
    # "--output /" was a traceback: "Can not create a Path from an empty string" (review 3).
    extra = {"sweep": ["--k", "8,12"], "compare": ["--variants", "orb"]}.get(command, [])
    assert main([command, "--input", str(dataset), "--output", "/", *extra,
                 *run_flags(12)[2:]]) == 1
    assert capsys.readouterr().err == (
        "bovw: error: output / names no folder of its own (a filesystem or bucket root, '.' "
        "or '..'); choose a folder below it, e.g. /run\n")


def test_the_filesystem_root_as_predictions_output_is_refused_in_one_line(finished_run,
                                                                          dataset, capsys):
    assert main(["predict", "--model", str(finished_run / "model.npz"), str(dataset / "Test"),
                 "--output", "/", *spark_flags()]) == 1
    assert capsys.readouterr().err.startswith("bovw: error: output / names no folder of its own")


@pytest.mark.parametrize("command", ["run", "sweep", "compare"])
def test_an_output_inside_the_input_is_refused_before_anything_is_written(
        dataset, tmp_path, capsys, monkeypatch, command):
    # A run folder inside a <Class>/*.jpg input was accepted: the next run read its report
    # plots as a class of its own and scored them (review 5).
    extra = {"sweep": ["--k", "8,12"], "compare": ["--variants", "orb"]}.get(command, [])
    link = tmp_path / "link"
    link.symlink_to(dataset)
    monkeypatch.chdir(dataset.parent)
    inside = dataset / "Training" / "out"
    for given_input, output, said in [
            (str(dataset), str(dataset / "runs" / "k12"), (dataset / "runs" / "k12", dataset)),
            # relative paths, said absolute
            (dataset.name, f"{dataset.name}/Training/out", (inside, dataset)),
            (str(link), str(dataset / "out"), (dataset / "out", link)),
            (str(dataset), str(dataset), (dataset, dataset))]:
        before = sorted(path.name for path in dataset.rglob("*"))
        assert main([command, "--input", given_input, "--output", output, *extra,
                     *run_flags(12)[2:]]) == 1
        assert capsys.readouterr().err == (
            f"bovw: error: output {said[0]} lies inside {said[1]}, which this command "
            "reads: the next command to read it would take bovw's files (a report's plots) "
            "for its own; choose an --output outside it\n")
        assert sorted(path.name for path in dataset.rglob("*")) == before


def test_an_output_beside_the_input_is_not_inside_it(spark, tmp_path):
    # A name that only begins like the input's is another folder.
    photos = tmp_path / "photos"
    photos.mkdir()
    with prepare_spec_folder(spark, f"{photos}-runs", "sweep.json", {"input": str(photos)},
                             False, "sweep", "x", quiet):
        pass
    assert (tmp_path / "photos-runs" / "sweep.json").is_file()
    with pytest.raises(OutputError, match=f"^output {photos}/runs lies inside {photos}, "):
        prepare_spec_folder(spark, f"{photos}/runs", "sweep.json", {"input": str(photos)},
                            False, "sweep", "x", quiet)
    assert list(photos.iterdir()) == []


def test_a_folder_read_inside_the_output_overwrite_replaces_is_refused_in_any_spelling(
        spark, tmp_path):
    # The swap deletes the old output once the new one is complete: what the command reads
    # from inside it would be gone. A link to it was not seen as inside (no realpath there).
    from bovw.spark.outputs import open_output

    root = tmp_path / "out"
    with open_output(spark, str(root), "predictions", overwrite=False, resume=lambda _: None,
                     matches=lambda _: False, start=lambda _: None, log=quiet):
        pass
    (root / "part-00000.parquet").write_bytes(b"PAR1")
    (tmp_path / "link.parquet").symlink_to(root / "part-00000.parquet")
    for read in (f"{root}/part-00000.parquet", f"file:{root}/part-00000.parquet",
                 str(tmp_path / "link.parquet")):
        with pytest.raises(OutputError) as error:
            with open_output(spark, str(root), "predictions", overwrite=True,
                             resume=lambda _: None, matches=lambda _: False,
                             start=lambda _: None, reads=[read], log=quiet):
                pass
        assert str(error.value) == (
            f"{read} lies inside {root}, which --overwrite would replace (and delete once "
            "the new one is complete); copy it elsewhere first, or choose another --output")
    assert sorted(path.name for path in root.iterdir()) == ["_bovw.json", "part-00000.parquet"]


def test_predictions_inside_the_photos_they_read_are_refused(finished_run, dataset, capsys):
    photos = dataset / "Test"
    assert main(["predict", "--model", str(finished_run / "model.npz"), str(photos),
                 "--output", str(photos / "predictions"), *spark_flags()]) == 1
    assert capsys.readouterr().err.startswith(
        f"bovw: error: output {photos / 'predictions'} lies inside {photos}, which this "
        "command reads")
    assert not (photos / "predictions").exists()


def test_a_relative_output_on_a_cluster_stays_where_hadoop_puts_it(monkeypatch):
    # On a cluster whose default filesystem is HDFS, "runs/x" is below the user's HDFS
    # home: made absolute on the driver's disk it would name another folder. (A stand-in
    # filesystem: no HDFS here.)
    from bovw.spark import storage

    class Hdfs:
        def getUri(self):
            return type("Uri", (), {"getScheme": lambda self: "hdfs"})()

        def makeQualified(self, path):
            qualified = f"hdfs://namenode:8020/user/me/{path}"
            return type("Path", (), {"toString": lambda self: qualified})()

    monkeypatch.setattr(storage, "path_and_fs", lambda _spark, path: (path, Hdfs()))
    assert storage.resolve(None, "runs/x") == "hdfs://namenode:8020/user/me/runs/x"
    assert storage.resolve(None, "/abs/x") == "/abs/x"
    # An output "." is kept as said (and refused); a folder only read (bovw report) is
    # the HDFS home there, not the driver's working directory.
    assert storage.resolve(None, ".") == "."
    assert storage.resolve(None, ".", keep_dots=False) == "hdfs://namenode:8020/user/me/."


def test_a_regular_file_is_never_replaced(dataset, tmp_path, capsys):
    target = tmp_path / "thesis.txt"
    target.write_bytes(THESIS)
    code = main(["run", "--input", str(dataset), "--output", str(target), "--overwrite",
                 *run_flags(12)])
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"bovw: error: output {target} is a file, not a bovw run folder; bovw never replaces "
        "it, with or without --overwrite: choose another --output"]
    assert target.read_bytes() == THESIS
    assert sorted(path.name for path in tmp_path.iterdir()) == ["thesis.txt"]


def test_a_bovw_folder_holding_someone_elses_file_is_resumed_but_never_replaced(
        spark, tmp_path):
    root = str(tmp_path / "sweep")
    with prepare_spec_folder(spark, root, "sweep.json", {"grid": 1}, False, "sweep", "x",
                             quiet):
        pass
    (tmp_path / "sweep" / "thesis.txt").write_bytes(THESIS)
    with prepare_spec_folder(spark, root, "sweep.json", {"grid": 1}, False, "sweep", "x",
                             quiet) as output:
        assert output.work == root
    with pytest.raises(OutputError) as refused:
        prepare_spec_folder(spark, root, "sweep.json", {"grid": 2}, True, "sweep", "x", quiet)
    assert str(refused.value) == (
        f"output {root} is a bovw sweep folder but also holds thesis.txt, which bovw did not "
        "write; --overwrite would delete them: move them out, or choose another --output")
    assert (tmp_path / "sweep" / "thesis.txt").read_bytes() == THESIS
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text()) == {"grid": 1}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sweep"]


def test_overwrite_replaces_only_the_same_kind_of_output(spark, dataset, tmp_path, capsys):
    root = str(tmp_path / "sweep")
    with prepare_spec_folder(spark, root, "sweep.json", {"grid": 1}, False, "sweep", "x",
                             quiet):
        pass
    assert main(["run", "--input", str(dataset), "--output", root, "--overwrite",
                 *run_flags(12)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"bovw: error: output {root} is a bovw sweep folder, not a run folder; choose another "
        "--output")
    assert sorted(path.name for path in (tmp_path / "sweep").iterdir()) == [
        "_bovw.json", "sweep.json"]


def test_a_filesystem_or_bucket_root_or_a_dot_is_refused(spark, tmp_path, monkeypatch):
    # "." was refused as "the root of its filesystem or bucket", which it is not.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for root in ("/", "s3a://bucket", ".", "runs/..", f"{tmp_path}/runs/."):
        with pytest.raises(OutputError) as error:
            prepare_spec_folder(spark, root, "sweep.json", {}, True, "sweep", "x", quiet)
        assert str(error.value) == (
            f"output {root} names no folder of its own (a filesystem or bucket root, '.' or "
            f"'..'); choose a folder below it, e.g. {root.rstrip('/')}/run")
    assert [path.name for path in tmp_path.iterdir()] == ["runs"]


def test_an_output_named_with_a_colon_is_refused_before_anything_is_written(spark, tmp_path):
    # It ended in a URISyntaxException traceback, after the lock was taken.
    root = tmp_path / "run:1"
    with pytest.raises(OutputError, match=r"^output .*/run:1: Hadoop cannot name a folder "
                                          r"whose name holds ':'; choose another --output$"):
        prepare_spec_folder(spark, str(root), "sweep.json", {}, True, "sweep", "x", quiet)
    assert list(tmp_path.iterdir()) == []
    # A colon in a folder above it is fine.
    prepare_spec_folder(spark, str(tmp_path / "a:b" / "run"), "sweep.json", {}, True, "sweep",
                        "x", quiet)
    assert (tmp_path / "a:b" / "run" / "sweep.json").is_file()


def test_predictions_replace_only_a_predictions_folder(spark, dataset, finished_run, tmp_path,
                                                       capsys):
    model = str(finished_run / "model.npz")
    photos = str(dataset / "Test")

    def predict(output: Path, *flags: str) -> int:
        return main(["predict", "--model", model, "--output", str(output), *flags, photos,
                     *spark_flags()])

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_bytes(THESIS)
    table = tmp_path / "table"
    spark.range(3).write.parquet(str(table))  # someone's own Parquet table
    before = snapshot(table)
    for output in (mine, table, mine / "thesis.txt"):
        assert predict(output, "--overwrite") == 1
        error = capsys.readouterr().err.splitlines()
        assert len(error) == 1 and "bovw never replaces it" in error[0], error
    assert [path.name for path in mine.iterdir()] == ["thesis.txt"]
    assert (mine / "thesis.txt").read_bytes() == THESIS
    assert snapshot(table) == before

    output = tmp_path / "predictions"
    assert predict(output) == 0
    assert capsys.readouterr().out.startswith("predicted 9 images (0 unreadable")
    assert predict(output) == 1
    assert capsys.readouterr().err.strip() == (
        f"bovw: error: output {output} already exists; choose another --output or pass "
        "--overwrite to replace it")
    # A table written before outputs carried the marker is recognised by its layout.
    (output / "_bovw.json").unlink()
    assert predict(output, "--overwrite") == 0
    assert len(storage.read_parquet(spark, str(output)).collect()) == 9
    assert json.loads((output / "_bovw.json").read_text())["kind"] == "predictions"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "mine", "predictions", "table"]


def test_ctrl_c_is_one_line_and_leaves_a_resumable_run(dataset, tmp_path, monkeypatch,
                                                       capsys):
    run = tmp_path / "run"

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_vocabulary_stage", interrupted)
    assert main(["run", "--input", str(dataset), "--output", str(run), *run_flags(8)]) == 130
    assert capsys.readouterr().err.splitlines() == [
        "bovw: interrupted: what was finished is kept, and the same command again goes on "
        "from there"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]  # no lock left
    assert sorted(path.name for path in (run / "_stages").iterdir()) == ["descriptors.json"]


def test_a_finished_run_without_its_report_points_to_bovw_report(spark, tmp_path):
    # `bovw run` killed while it drew report.html: the run is finished, and --overwrite,
    # the only way out the refusal named, would have redone every stage.
    run = tmp_path / "run"
    spec = {"input": str(tmp_path / "fruits"), "config": {"k": 8}}
    with prepare_output(spark, RunLayout(str(run)), spec, False, quiet):
        (run / "summary.json").write_text("{}")
    refusal = (f"output {run} already holds a finished run{{}}; choose another --output or "
               "pass --overwrite to replace it")
    with pytest.raises(OutputError) as error:
        prepare_output(spark, RunLayout(str(run)), spec, False, quiet)
    assert str(error.value) == refusal.format(
        f" (without its report.html: bovw report {run} draws it)")
    # A run that draws its report resumes it, with the same spec only.
    notes: list[str] = []
    with prepare_output(spark, RunLayout(str(run)), spec, False, notes.append,
                        draws_report=True) as output:
        assert output.work == str(run)
    assert notes[-1] == (f"[bovw] {run} holds this finished run without its report.html: "
                         "reusing every stage to draw it")
    with pytest.raises(OutputError) as error:
        prepare_output(spark, RunLayout(str(run)), {**spec, "config": {"k": 9}}, False, quiet,
                       draws_report=True)
    assert str(error.value) == refusal.format(
        f" (without its report.html: bovw report {run} draws it)")
    (run / "report.html").write_text("<html></html>")
    for draws_report in (False, True):
        with pytest.raises(OutputError) as error:
            prepare_output(spark, RunLayout(str(run)), spec, False, quiet,
                           draws_report=draws_report)
        assert str(error.value) == refusal.format("")


def test_ctrl_c_while_the_report_is_drawn_and_the_same_command_draws_it(
        dataset, tmp_path, monkeypatch, capsys):
    from bovw.report import pages

    run = tmp_path / "run"
    command = ["run", "--input", str(dataset), "--output", str(run), *run_flags(8)]
    drawn = pages.write_run_report

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pages, "write_run_report", interrupted)
    assert main(command) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "bovw: interrupted: what was finished is kept, and the same command again goes on "
        "from there")
    finished = json.loads((run / "metrics.json").read_text())
    assert not (run / "report.html").exists()
    monkeypatch.setattr(pages, "write_run_report", drawn)
    assert main(command) == 0
    out = capsys.readouterr().out
    assert f"[bovw] {run} holds this finished run without its report.html" in out
    assert (run / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert json.loads((run / "metrics.json").read_text()) == finished
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_stages"] == ["descriptors", "vocabulary", "histograms",
                                         "reduction", "classifier"]
    # In the order they ran, as in the first attempt (a resumed record's keys are sorted).
    assert list(summary["timings_seconds"]) == ["ingest", "descriptors", "vocabulary",
                                                "histograms", "reduction", "classifier"]
    assert "time per stage   ingest (in descriptors) " in out
    # Finished with its report now: the same command is refused again.
    assert main(command) == 1
    assert "already holds a finished run; choose another --output" in capsys.readouterr().err


def test_export_replaces_a_model_file_and_nothing_else(finished_run, tmp_path, capsys):
    import numpy as np

    def export(target: Path) -> int:
        return main(["export", str(finished_run), "--out", str(target), *spark_flags()])

    notes = tmp_path / "notes.txt"
    notes.write_bytes(THESIS)
    weights = tmp_path / "weights.npz"  # someone's own arrays, with a "metadata" member
    np.savez(weights, metadata=np.array('{"format": "mine"}'), w=np.arange(3))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_bytes(THESIS)
    before = snapshot(tmp_path)
    capsys.readouterr()
    for target in (notes, weights):
        assert export(target) == 1
        assert capsys.readouterr().err.splitlines() == [
            f"bovw: error: --out {target} exists and is not a bovw model; bovw replaces only "
            "a model it wrote; fix: choose another --out, or move that file away"]
    assert export(mine) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"bovw: error: --out {mine} is a folder; fix: name the model file to write, e.g. "
        f"{mine}/model.npz"]
    assert snapshot(tmp_path) == before

    # An earlier model file is replaced, even one of a format this bovw no longer reads.
    model = tmp_path / "model.npz"
    np.savez(model, metadata=np.array('{"format": "bovw-model", "format_version": 0}'))
    assert export(model) == 0
    assert model.read_bytes() == (finished_run / "model.npz").read_bytes()


def test_a_run_on_reused_descriptors_exports_after_their_run_is_gone(dataset, finished_run,
                                                                     tmp_path, capsys):
    import shutil

    from bovw.predict.model_file import model_from_bytes

    source, run = tmp_path / "source", tmp_path / "run"
    shutil.copytree(finished_run, source)
    assert main(["run", "--input", str(dataset), "--output", str(run), "--descriptors-from",
                 str(source / "descriptors"), *run_flags(8)]) == 0
    # Deleted (or replaced by a run of other images): the export read its descriptors.
    shutil.rmtree(source)
    assert main(["export", str(run), *spark_flags()]) == 0
    size = model_from_bytes((run / "model.npz").read_bytes()).training_size
    assert size == model_from_bytes((finished_run / "model.npz").read_bytes()).training_size
    record = json.loads((run / "_stages" / "descriptors.json").read_text())
    assert record["training_size"] == list(size) == [100, 100]

    # A run of an earlier bovw has no such record: it is measured on the descriptors, and
    # without them export says so in one line.
    del record["training_size"]
    (run / "_stages" / "descriptors.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(tmp_path / "m.npz"), *spark_flags()]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"bovw: error: run {run} was made from the descriptors in {source}/descriptors, "
        "which are gone, and its record lacks the size of its Training images: put them "
        "back, or run the pipeline again with this bovw (a new --output), then export"]


# ------------------------------------- the old output stays whole until the new one is done

def test_a_failed_overwrite_leaves_the_old_run_whole_and_the_same_command_finishes_it(
        spark, dataset, finished_run, tmp_path, monkeypatch, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    assert {"metrics.json", "report.html", "model.npz", "models/classifier/metadata/_SUCCESS"
            } <= set(before)
    command = ["run", "--input", str(dataset), "--output", str(run), "--overwrite",
               *run_flags(8)]

    def broken(*_args, **_kwargs):
        raise RuntimeError("the vocabulary stage broke")

    monkeypatch.setattr(pipeline, "_vocabulary_stage", broken)
    with pytest.raises(RuntimeError, match="the vocabulary stage broke"):
        main(command)
    assert snapshot(run) == before
    staging = tmp_path / ".run.bovw-new"
    assert sorted(path.name for path in (staging / "_stages").iterdir()) == ["descriptors.json"]
    # The lock is released on the error; the old run is the only visible entry.
    assert sorted(path.name for path in tmp_path.iterdir()) == [".run.bovw-new", "run"]

    monkeypatch.undo()
    capsys.readouterr()
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert f"[bovw] resuming the replacement of {run}, staged in {staging}" in printed
    assert "[bovw] descriptors: already finished, reusing its outputs" in printed
    assert f"[bovw] {run} replaced by the new output" in printed
    assert f"  output           {run}" in printed
    assert f"  report           {run}/report.html" in printed
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["vocabulary"]["k"] == 8 and summary["output"] == str(run)
    assert summary["resumed_stages"] == ["descriptors"]
    record = json.loads((run / "_stages" / "descriptors.json").read_text())
    assert record["descriptors_path"] == f"{run}/descriptors"
    assert not (run / "model.npz").exists()  # the old run's, gone with it
    assert (run / "report.html").exists()
    assert main(["export", str(run), *spark_flags()]) == 0


def test_a_relative_input_resumes_only_the_folder_it_named(spark, tmp_path, monkeypatch):
    # `bovw run --input fruits` killed, then the same command from another folder: the same
    # words name other images there, and resuming the first folder's descriptors reported
    # its classes as the results of the second folder's images.
    first, second, run = tmp_path / "first", tmp_path / "second", tmp_path / "run"
    spec = {"input": "fruits", "descriptors_from": None, "config": {"k": 8}}
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    with prepare_output(spark, RunLayout(str(run)), spec, False, quiet):
        (run / "_stages").mkdir()
        (run / "_stages" / "descriptors.json").write_text("{}")
    assert json.loads((run / "run.json").read_text())["input"] == str(first / "fruits")
    before = snapshot(run)

    monkeypatch.chdir(second)
    with pytest.raises(OutputError, match=f"^output {run} holds an unfinished run with a "
                                          f"different input or configuration \\(input "
                                          f"{first / 'fruits'} there, {second / 'fruits'} "
                                          "here\\);"):
        prepare_output(spark, RunLayout(str(run)), spec, False, quiet)
    assert snapshot(run) == before

    # The first folder, however spelled, resumes its own stages.
    with prepare_output(spark, RunLayout(str(run)), {**spec, "input": "../first/./fruits/"},
                        False, quiet) as output:
        assert output.work == str(run) and not output.staged
    assert snapshot(run) == before


def test_an_overwritten_sweep_names_its_final_folder_everywhere(spark, test_config, dataset,
                                                                tmp_path):
    from bovw.experiments.sweep import run_sweep
    from bovw.predict.export import build_model

    root = tmp_path / "sweep"
    with prepare_spec_folder(spark, str(root), "sweep.json", {"grid": "old"}, False, "sweep",
                             "x", quiet) as output:
        make_files(output.work, {"sweep.csv": "old\n"})
    staging = str(tmp_path / ".sweep.bovw-new")
    log: list[str] = []
    result = run_sweep(spark, test_config.replace(**{"vocabulary.k": 8}), str(dataset),
                       str(root), [("pca.components", ["3", "4"])], overwrite=True,
                       report=False, log=log.append)
    assert f"[bovw] {root} replaced by the new output" in log
    assert result.output == str(root) and len(result.rows) == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sweep"]
    for path in root.rglob("*"):
        if path.suffix in (".json", ".csv", ".md"):
            assert staging not in path.read_text(), path
    second = root / "points" / "pca.components=4"
    # The second point read the first point's descriptors, staged then; now in place.
    assert json.loads((second / "run.json").read_text())["descriptors_from"] == str(
        root / "points" / "pca.components=3" / "descriptors")
    assert json.loads((second / "summary.json").read_text())["output"] == str(second)
    assert build_model(spark, str(second)).training_size == (100, 100)


def make_files(root: str, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def tree(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): path.read_text()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("atomic_rename", [True, False], ids=["local-hdfs", "object-store"])
def test_a_swap_cut_short_is_finished_by_the_next_command(spark, tmp_path, monkeypatch,
                                                          atomic_rename):
    root = str(tmp_path / "sweep")
    staging = str(tmp_path / ".sweep.bovw-new")
    with prepare_spec_folder(spark, root, "sweep.json", {"grid": 1}, False, "sweep", "x",
                             quiet) as output:
        make_files(output.work, {"sweep.csv": "old\n", "points/a/summary.json": "{}"})
    old = tree(tmp_path / "sweep")

    monkeypatch.setattr(storage, "has_atomic_rename", lambda *_args: atomic_rename)
    real_rename = storage.rename
    moves = []

    def rename_then_fail(spark, source, target):
        moves.append(source)
        if source.startswith(staging) and len(moves) >= 2:
            raise OSError("the machine went away")
        real_rename(spark, source, target)

    monkeypatch.setattr(storage, "rename", rename_then_fail)
    log: list[str] = []
    with pytest.raises(OSError, match="the machine went away"), prepare_spec_folder(
            spark, root, "sweep.json", {"grid": 2}, True, "sweep", "x", log.append) as output:
        assert output.work == staging
        assert tree(tmp_path / "sweep") == old  # readers still see the old sweep
        make_files(staging, {
            "sweep.csv": "new\n", "sweep.md": "| new |\n",
            "points/b/summary.json": json.dumps({"output": f"{staging}/points/b"}),
            "points/b/report.html": f"<p>{staging}/points/b</p>",
            "points/b/descriptors/part-0.parquet": staging})  # data: never rewritten
    assert log[0] == (f"[bovw] the new sweep folder is built in {staging} and replaces {root} "
                      "once complete")
    assert (tmp_path / ".sweep.bovw-swap").exists()
    assert not (tmp_path / ".sweep.bovw-lock").exists()

    monkeypatch.setattr(storage, "rename", real_rename)
    log.clear()
    # Any later command on the output finishes the swap first; this one then resumes it.
    with prepare_spec_folder(spark, root, "sweep.json", {"grid": 2}, False, "sweep", "x",
                             log.append) as output:
        assert output.work == root
    assert log == [f"[bovw] finishing the replacement of {root} that an earlier command "
                   "left half done"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sweep"]
    assert tree(tmp_path / "sweep") == {
        "_bovw.json": tree(tmp_path / "sweep")["_bovw.json"],
        "sweep.json": json.dumps({"grid": 2}, indent=2, sort_keys=True),
        "sweep.csv": "new\n", "sweep.md": "| new |\n",
        "points/b/summary.json": json.dumps({"output": f"{root}/points/b"}),
        "points/b/report.html": f"<p>{root}/points/b</p>",
        "points/b/descriptors/part-0.parquet": staging}


def test_a_successful_overwrite_swaps_and_leaves_nothing_beside(spark, tmp_path):
    root = str(tmp_path / "sweep")
    for grid in (1, 2):
        with prepare_spec_folder(spark, root, "sweep.json", {"grid": grid}, True, "sweep",
                                 "x", quiet) as output:
            make_files(output.work, {"sweep.csv": f"grid {grid}\n"})
            assert output.work == (root if grid == 1 else str(tmp_path / ".sweep.bovw-new"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sweep"]
    assert (tmp_path / "sweep" / "sweep.csv").read_text() == "grid 2\n"


# ------------------------------------------------------------- one command per output

def test_a_run_draws_its_report_under_its_own_lock(spark, dataset, tmp_path, monkeypatch,
                                                   capsys):
    # `bovw run` released its lock after the last stage and took it again to draw the
    # report: another command could take the folder in between (its report would then be
    # "not drawn", or show another run's files), and an --overwrite published the new run
    # without its report, which a kill at that moment left undrawn.
    from bovw.report import pages

    taken, drawn = [], []
    acquire, draw = leases.acquire, pages.write_run_report

    def counted(spark, folder, command, **kwargs):
        taken.append((folder, command))
        return acquire(spark, folder, command, **kwargs)

    def watched(spark, folder, *args, **kwargs):
        holder = json.loads(lease_file(tmp_path, "run").read_text())
        drawn.append((folder, holder["pid"], holder["command"],
                      sorted(path.name for path in tmp_path.iterdir())))
        return draw(spark, folder, *args, **kwargs)

    monkeypatch.setattr(leases, "acquire", counted)
    monkeypatch.setattr(pages, "write_run_report", watched)
    run, staging = tmp_path / "run", tmp_path / ".run.bovw-new"
    command = ["run", "--input", str(dataset), "--output", str(run), *run_flags(8)]
    assert main(command) == 0
    assert taken == [(str(run), "bovw run")]
    assert drawn == [(str(run), os.getpid(), "bovw run", [".run.bovw-lock", "run"])]
    assert f"  report           {run}/report.html" in capsys.readouterr().out
    assert (run / "report.html").is_file() and not lease_file(tmp_path, "run").exists()

    # Replacing it: drawn in the staging folder, before the swap, and published with it.
    assert main([*command, "--overwrite"]) == 0
    assert taken[1:] == [(str(run), "bovw run")]
    assert drawn[1:] == [(str(staging), os.getpid(), "bovw run",
                          [".run.bovw-lock", ".run.bovw-new", "run"])]
    printed = capsys.readouterr().out
    assert printed.index("[bovw] report: running") < printed.index(
        f"[bovw] {run} replaced by the new output")
    assert f"  report           {run}/report.html" in printed
    report = (run / "report.html").read_text()
    assert str(run) in report and ".run.bovw-new" not in report
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]

    # A report that fails leaves the old run in place and the finished new one staged: the
    # same command again draws it and publishes both, without running a stage again.
    def broken(*_args, **_kwargs):
        raise RuntimeError("the report broke")

    before = snapshot(run)
    monkeypatch.setattr(pages, "write_run_report", broken)
    with pytest.raises(RuntimeError, match="the report broke"):
        main([*command, "--overwrite", "--seed", "7"])
    assert snapshot(run) == before
    assert (staging / "summary.json").is_file() and not (staging / "report.html").exists()
    monkeypatch.setattr(pages, "write_run_report", watched)
    capsys.readouterr()
    assert main([*command, "--overwrite", "--seed", "7"]) == 0
    printed = capsys.readouterr().out
    assert f"[bovw] resuming the replacement of {run}, staged in {staging}" in printed
    assert "[bovw] classifier: already finished, reusing its outputs" in printed
    assert json.loads((run / "run.json").read_text())["config"]["seed"] == 7
    assert (run / "report.html").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]


def test_sweep_points_and_variants_draw_their_reports_under_their_own_locks(
        spark, test_config, dataset, tmp_path, monkeypatch):
    # A sweep drew each point's report after the point's run had released its lock: another
    # command could take the point folder in between. Now the run draws it, still holding
    # its lock; a point finished without its report gets it under a lock of the sweep's.
    from bovw.experiments.sweep import run_sweep
    from bovw.report import pages

    drawn, draw = [], pages.write_run_report

    def watched(spark, folder, *args, **kwargs):
        point = Path(folder)
        holder = json.loads((point.parent / f".{point.name}.bovw-lock").read_text())
        drawn.append((point.name, holder["command"], holder["pid"]))
        return draw(spark, folder, *args, **kwargs)

    monkeypatch.setattr(pages, "write_run_report", watched)
    root, config = tmp_path / "sweep", test_config.replace(**{"vocabulary.k": 8})
    point = root / "points" / "pca.components=3"
    run_sweep(spark, config, str(dataset), str(root), [("pca.components", ["3"])], log=quiet)
    assert drawn == [("pca.components=3", "bovw run", os.getpid())]
    assert "bovw sweep point pca.components=3" in (point / "report.html").read_text()
    (point / "report.html").unlink()
    run_sweep(spark, config, str(dataset), str(root), [("pca.components", ["3"])], log=quiet)
    assert drawn[1:] == [("pca.components=3", "bovw sweep", os.getpid())]
    assert (point / "report.html").is_file()
    assert not (point.parent / ".pca.components=3.bovw-lock").exists()

    # A comparison's variants alike.
    from bovw.experiments.compare import compare

    variant = tmp_path / "compare" / "variants" / "orb"
    compare(spark, config, str(dataset), str(tmp_path / "compare"), variants=("orb",),
            log=quiet)
    assert drawn[2:] == [("orb", "bovw run", os.getpid())]
    (variant / "report.html").unlink()
    compare(spark, config, str(dataset), str(tmp_path / "compare"), variants=("orb",),
            log=quiet)
    assert drawn[3:] == [("orb", "bovw compare", os.getpid())]
    assert "bovw comparison variant orb" in (variant / "report.html").read_text()


def lease_file(tmp_path: Path, name: str = "out") -> Path:
    return tmp_path / f".{name}.bovw-lock"


def write_lease(path: Path, **changes) -> None:
    now = time.time()
    record = {"format": "bovw-lock", "output": "x", "command": "bovw run", "host": "elsewhere",
              "pid": 1, "pid_started": None, "user": "someone", "started": now - 60,
              "heartbeat": now, "token": "theirs", **changes}
    path.write_text(json.dumps(record))


def test_a_second_command_is_refused_while_the_first_holds_the_output(spark, dataset,
                                                                       tmp_path, capsys):
    output = tmp_path / "out"
    with leases.acquire(spark, str(output), "bovw run", log=quiet) as held:
        code = main(["run", "--input", str(dataset), "--output", str(output), *run_flags(12)])
        assert code == 1
        error = capsys.readouterr().err.splitlines()
        assert held.holds()
    assert len(error) == 1
    assert error[0].startswith(
        f"bovw: error: output {output} is in use by another bovw run on host "
        f"{socket.gethostname()}, pid {held.record.pid}, started ")
    assert error[0].endswith(
        "; wait for it to end, or choose another --output (a lock is stale, and taken over, "
        "once its process is gone on the same host or its heartbeat is over 300 s old; if you "
        f"are sure nothing uses {output}, delete {lease_file(tmp_path)})")
    assert not output.exists()
    assert not lease_file(tmp_path).exists()  # released on leaving the with block


def test_a_report_is_drawn_only_while_no_other_command_holds_the_folder(spark, finished_run,
                                                                         tmp_path, capsys,
                                                                         monkeypatch):
    import shutil

    run = tmp_path / "out"
    shutil.copytree(finished_run, run)
    (run / "report.html").unlink()
    # Another command (a `bovw run --overwrite` replacing it, say) holds the folder: the
    # report would mix the two runs' files.
    write_lease(lease_file(tmp_path), output=str(run))
    assert main(["report", str(run), *spark_flags()]) == 1
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and error[0].startswith(
        f"bovw: error: output {run} is in use by another bovw run on host elsewhere, pid 1")
    assert f"; wait for it to end, then draw the report with: bovw report {run} (" in error[0]
    assert not (run / "report.html").exists()
    lease_file(tmp_path).unlink()
    assert main(["report", str(run), *spark_flags()]) == 0
    assert capsys.readouterr().out == f"report: {run}/report.html\n"
    assert (run / "report.html").exists() and not lease_file(tmp_path).exists()
    # "." and ".." name their folder and its lock like any other spelling.
    monkeypatch.chdir(run / "models")
    for spelling in ("..", "../", f"{run}/"):
        assert main(["report", spelling, *spark_flags()]) == 0
        assert capsys.readouterr().out == f"report: {run}/report.html\n"
    # A copy under a name no lock can be named after (no bovw command writes there).
    colon = tmp_path / "copy:1"
    shutil.copytree(run, colon)
    assert main(["report", str(colon), *spark_flags()]) == 0
    assert capsys.readouterr().out == f"report: {colon}/report.html\n"
    shutil.rmtree(colon)
    # A folder that is no bovw output gets no lock file, nor a folder made for one.
    assert main(["report", str(tmp_path / "no" / "such"), *spark_flags()]) == 1
    assert capsys.readouterr().err == f"bovw: error: {tmp_path}/no/such not found\n"
    assert main(["report", str(run / "models"), *spark_flags()]) == 1
    assert capsys.readouterr().err == (f"bovw: error: {run}/models is not a finished bovw "
                                       "run, sweep or comparison folder\n")
    # An unfinished run says how to finish it (review 5: no fix was given).
    unfinished = tmp_path / "out" / "unfinished"
    unfinished.mkdir()
    shutil.copy(run / "run.json", unfinished / "run.json")
    assert main(["report", str(unfinished), *spark_flags()]) == 1
    assert capsys.readouterr().err == (
        f"bovw: error: {unfinished} is a bovw run that has not finished (no summary.json); "
        "fix: run the same bovw run command again, which goes on where it stopped and draws "
        "the report\n")
    shutil.rmtree(unfinished)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_a_live_lease_of_another_host_is_respected(spark, tmp_path):
    write_lease(lease_file(tmp_path), heartbeat=time.time() - 200)
    with pytest.raises(OutputInUseError, match=r"in use by another bovw run on host elsewhere, "
                                               r"pid 1, started .*, last heartbeat 200 s ago"):
        leases.acquire(spark, str(tmp_path / "out"), "bovw run", log=quiet)
    assert json.loads(lease_file(tmp_path).read_text())["token"] == "theirs"


def test_a_lease_whose_process_is_gone_is_taken_over(spark, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    write_lease(lease_file(tmp_path), host=host, pid=dead.pid)
    log: list[str] = []
    with leases.acquire(spark, str(tmp_path / "out"), "bovw run", log=log.append) as lease:
        assert json.loads(lease_file(tmp_path).read_text())["token"] == lease.record.token
    assert len(log) == 1
    assert log[0].startswith(
        f"[bovw] taking over the stale lock of bovw run on host {host}, pid {dead.pid}, ")
    assert log[0].endswith(f": process {dead.pid} on {host} is gone")
    assert not lease_file(tmp_path).exists()


def test_a_lease_without_a_heartbeat_for_too_long_is_taken_over(spark, tmp_path):
    write_lease(lease_file(tmp_path), heartbeat=time.time() - 301)
    log: list[str] = []
    with leases.acquire(spark, str(tmp_path / "out"), "bovw run", log=log.append):
        pass
    # 301 s when written; a second or two more by the time it is judged.
    assert re.search(r": its last heartbeat is 30[1-5] s old$", log[0])


def test_an_empty_lease_file_is_taken_over_at_once(spark, tmp_path):
    # What a command killed while its heartbeat rewrote the file in place leaves behind
    # (seen in a test that SIGKILLs a run): waiting 300 s for it would help nobody.
    lease_file(tmp_path).write_bytes(b"")
    log: list[str] = []
    with leases.acquire(spark, str(tmp_path / "out"), "bovw run", log=log.append) as lease:
        assert json.loads(lease_file(tmp_path).read_text())["token"] == lease.record.token
    assert log == [f"[bovw] taking over the stale lock {lease_file(tmp_path)}: it is empty "
                   "(its command was stopped while renewing it)"]


def test_an_unreadable_lease_file_is_judged_by_its_age(spark, tmp_path):
    path = lease_file(tmp_path)
    path.write_text("{not a lock")
    with pytest.raises(OutputInUseError, match=re.escape(
            f"in use by another bovw command (its lock {path} is unreadable)")):
        leases.acquire(spark, str(tmp_path / "out"), "bovw run", log=quiet)
    assert path.read_text() == "{not a lock"
    old = time.time() - 301
    os.utime(path, (old, old))
    log: list[str] = []
    with leases.acquire(spark, str(tmp_path / "out"), "bovw run", log=log.append):
        pass
    assert re.fullmatch(rf"\[bovw\] taking over the stale lock {re.escape(str(path))}: "
                        r"it is unreadable and 30[1-5] s old", log[0])


def test_a_reader_judges_an_empty_or_unreadable_lease_file_as_acquire_does(spark, tmp_path):
    # refuse_if_held (bovw export's check) refused an empty lock, which acquire takes over
    # as stale, and an unreadable one whatever its age: it blocked the export for ever.
    path, folder = lease_file(tmp_path), str(tmp_path / "out")
    path.write_bytes(b"")
    leases.refuse_if_held(spark, folder)
    path.write_text("{not a lock")
    with pytest.raises(OutputInUseError, match=re.escape(
            f"in use by another bovw command (its lock {path} is unreadable)")):
        leases.refuse_if_held(spark, folder)
    old = time.time() - 301
    os.utime(path, (old, old))
    leases.refuse_if_held(spark, folder)
    assert path.read_text() == "{not a lock"  # only read


def heartbeat(tmp_path) -> float:
    """The lease file's heartbeat (a local lease file is always whole: see below)."""
    return json.loads(lease_file(tmp_path).read_text())["heartbeat"]


def test_a_reader_never_catches_a_local_lease_file_half_renewed(spark, tmp_path):
    # The heartbeat once rewrote the file in place (truncate, then write): a reader could
    # catch it empty, and a command killed in between left an empty lock behind.
    lease = leases.acquire(spark, str(tmp_path / "out"), "bovw run", heartbeat_seconds=0.001,
                           log=quiet)
    try:
        seen = set()
        deadline = time.monotonic() + 10.0
        while len(seen) < 20 and time.monotonic() < deadline:
            record = json.loads(lease_file(tmp_path).read_bytes())
            assert record["token"] == lease.record.token
            seen.add(record["heartbeat"])
        assert len(seen) >= 20  # read across 20 renewals at least
    finally:
        lease.release()
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_replace_file_swaps_a_whole_file_and_leaves_nothing_beside(spark, tmp_path):
    target = tmp_path / "lock"
    target.write_bytes(b"old")
    before = target.stat().st_ino
    storage.replace_file(spark, str(target), b"new content")
    assert target.read_bytes() == b"new content"
    assert target.stat().st_ino != before  # a new file renamed over it, not rewritten
    assert sorted(path.name for path in tmp_path.iterdir()) == ["lock"]
    with pytest.raises(StorageError, match=re.escape(
            f"cannot write {tmp_path}/gone/lock: not found (No such file or directory); fix: "
            "check the path")):
        storage.replace_file(spark, str(tmp_path / "gone" / "lock"), b"x")
    # Refused once the new bytes are written beside it: they are removed.
    (tmp_path / "folder").mkdir()
    with pytest.raises(StorageError, match=re.escape(
            f"cannot write {tmp_path}/folder: Is a directory; fix: ")):
        storage.replace_file(spark, str(tmp_path / "folder"), b"x")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["folder", "lock"]


def eventually(condition, seconds: float = 20.0) -> bool:
    """True as soon as `condition()` is, False if it is not within `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_heartbeat_keeps_the_lease_fresh_and_notices_a_takeover(spark, tmp_path):
    lease = leases.acquire(spark, str(tmp_path / "out"), "bovw run", heartbeat_seconds=0.1,
                           log=quiet)
    try:
        first = heartbeat(tmp_path)
        # Polled, not slept for a fixed time: a loaded machine may delay the thread.
        assert eventually(lambda: heartbeat(tmp_path) > first)
        write_lease(lease_file(tmp_path))  # someone took it over (by hand)
        assert eventually(lambda: not lease.holds())
    finally:
        lease.release()
    assert json.loads(lease_file(tmp_path).read_text())["token"] == "theirs"  # not ours to delete


def test_of_commands_starting_together_exactly_one_gets_the_lease(spark, tmp_path):
    barrier = threading.Barrier(6)
    won, refused = [], []

    def contend() -> None:
        barrier.wait()
        try:
            won.append(leases.acquire(spark, str(tmp_path / "out"), "bovw run", log=quiet))
        except OutputInUseError as error:
            refused.append(str(error))

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(refused) == 5
    won[0].release()
    assert not lease_file(tmp_path).exists()


def test_a_lease_created_exclusively_is_read_back_without_a_pause(spark, tmp_path,
                                                                  monkeypatch):
    # A local disk creates it with link(2): no rival can have replaced it, so the 0.2 s
    # pause every command paid before reading it back is left to filesystems whose
    # creation is shared (a rival's create of the same instant may land after it) and to
    # takeovers.
    pauses, create, sleep, this = [], storage.create_new, time.sleep, threading.get_ident()

    def recorded(seconds):  # other threads (Spark's, py4j's) sleep as they did
        if threading.get_ident() != this:
            return sleep(seconds)
        pauses.append(seconds)

    monkeypatch.setattr(leases.time, "sleep", recorded)
    leases.acquire(spark, str(tmp_path / "out"), "bovw run", log=quiet).release()
    assert pauses == []
    monkeypatch.setattr(storage, "create_new", lambda *args: (
        create(*args), storage.Creation.SHARED)[1])
    leases.acquire(spark, str(tmp_path / "out"), "bovw run", log=quiet).release()
    assert pauses == [0.2]
    # Taking over a stale lease pauses too: a rival taking over the same one in the same
    # instant may delete the new lease along with the stale one.
    monkeypatch.setattr(storage, "create_new", create)
    write_lease(lease_file(tmp_path), heartbeat=time.time() - 301)
    leases.acquire(spark, str(tmp_path / "out"), "bovw run", log=quiet).release()
    assert pauses == [0.2, 0.2]
    assert not lease_file(tmp_path).exists()


def test_the_lease_is_released_when_the_run_fails(spark, test_config, dataset, tmp_path,
                                                  monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("the descriptors stage broke")

    monkeypatch.setattr(pipeline, "_descriptors_stage", broken)
    with pytest.raises(RuntimeError, match="descriptors stage broke"):
        pipeline.run_pipeline(spark, test_config.replace(**{"vocabulary.k": 8}), str(dataset),
                              str(tmp_path / "out"), log=quiet)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


@pytest.mark.subprocess_runs
def test_a_replacing_run_killed_while_it_draws_its_report_is_finished_by_the_same_command(
        dataset, finished_run, tmp_path, capsys):
    """`bovw run --overwrite` in a child process, SIGKILLed once it starts its report: the
    old run is intact and the new one staged, finished but for its report; the same command
    takes over the dead command's lock, draws the report and publishes both."""
    import shutil

    from tests.cluster_fixtures import kill_bovw_at

    run, staging = tmp_path / "run", tmp_path / ".run.bovw-new"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    command = ["run", "--input", str(dataset), "--output", str(run), "--overwrite",
               *run_flags(8)]
    pid, printed = kill_bovw_at(command, "[bovw] report: running")
    assert printed[-1] == "[bovw] report: running", printed[-20:]
    assert snapshot(run) == before
    assert (staging / "summary.json").is_file()

    capsys.readouterr()
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert (f"[bovw] taking over the stale lock of bovw run on host {socket.gethostname()}, "
            f"pid {pid}") in printed
    assert f"[bovw] resuming the replacement of {run}, staged in {staging}" in printed
    assert "[bovw] classifier: already finished, reusing its outputs" in printed
    assert printed.index("[bovw] report: running") < printed.index(
        f"[bovw] {run} replaced by the new output")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]
    assert json.loads((run / "summary.json").read_text())["vocabulary"]["k"] == 8
    report = (run / "report.html").read_text()
    assert str(run) in report and ".run.bovw-new" not in report


@pytest.mark.subprocess_runs
def test_a_killed_overwrite_keeps_the_old_run_and_no_second_command_runs_beside_it(
        spark, dataset, finished_run, tmp_path, capsys, monkeypatch):
    """`bovw run --overwrite` in a child process, SIGKILLed in its vocabulary stage; while it
    runs, the same command here is refused; after the kill the old run is intact and the
    same command takes over the dead command's lock and resumes the staged run (here made
    to fail again at once, which again leaves the old run intact and no lock behind)."""
    import shutil

    from tests.cluster_fixtures import kill_bovw_at

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    command = ["run", "--input", str(dataset), "--output", str(run), "--overwrite",
               *run_flags(8)]
    refused: list[str] = []

    def second_command_meanwhile() -> None:
        capsys.readouterr()
        assert main(command) == 1
        refused.extend(capsys.readouterr().err.splitlines())

    pid, printed = kill_bovw_at(command, "[bovw] vocabulary: running", second_command_meanwhile)
    host = socket.gethostname()
    assert printed[-1] == "[bovw] vocabulary: running", printed[-20:]
    assert len(refused) == 1, refused
    assert refused[0].startswith(f"bovw: error: output {run} is in use by another bovw run on "
                                 f"host {host}, pid {pid}, started ")
    assert snapshot(run) == before
    assert json.loads(lease_file(tmp_path, "run").read_text())["pid"] == pid

    def broken(*_args, **_kwargs):
        raise RuntimeError("the vocabulary stage broke")

    monkeypatch.setattr(pipeline, "_vocabulary_stage", broken)
    with pytest.raises(RuntimeError, match="the vocabulary stage broke"):
        main(command)
    printed_again = capsys.readouterr().out
    assert (f"[bovw] taking over the stale lock of bovw run on host {host}, pid {pid}"
            in printed_again)
    assert "[bovw] descriptors: already finished, reusing its outputs" in printed_again
    assert snapshot(run) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [".run.bovw-new", "run"]


def test_export_is_refused_while_another_command_holds_the_run(finished_run, tmp_path, capsys,
                                                               monkeypatch):
    # An export during an --overwrite run of the same folder ended in a Java trace (its
    # models were swapped between two reads), or could mix two runs' models (review 5).
    from bovw.predict import export

    lock = lease_file(finished_run.parent, finished_run.name)
    target = tmp_path / "m.npz"
    refused = (f"bovw: error: output {finished_run} is in use by another bovw run on host "
               "elsewhere, pid 1, started ")
    advice = f"; wait for it to end, then export with: bovw export {finished_run} (a lock"
    write_lease(lock)
    try:
        assert main(["export", str(finished_run), "--out", str(target), *spark_flags()]) == 1
        err = capsys.readouterr().err
        assert err.startswith(refused) and advice in err and err.count("\n") == 1
        assert not target.exists()
        # One that starts while the models are read: checked again before writing.
        lock.unlink()
        build_model = export.build_model

        def run_starts_meanwhile(*args, **kwargs):
            model = build_model(*args, **kwargs)
            write_lease(lock)
            return model

        monkeypatch.setattr(export, "build_model", run_starts_meanwhile)
        assert main(["export", str(finished_run), "--out", str(target), *spark_flags()]) == 1
        assert capsys.readouterr().err.startswith(refused)
        assert not target.exists()
    finally:
        lock.unlink(missing_ok=True)
    # A stale lock (its heartbeat long over) holds nothing back, and is left as it is.
    write_lease(lock, heartbeat=time.time() - 10_000)
    monkeypatch.setattr(export, "build_model", build_model)
    try:
        assert main(["export", str(finished_run), "--out", str(target), *spark_flags()]) == 0
        assert target.is_file() and lock.is_file()
    finally:
        lock.unlink(missing_ok=True)
