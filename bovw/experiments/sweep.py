"""Sweeps: the whole pipeline over a grid of settings, descriptors extracted once and reused.

Each point of the grid is an ordinary run folder `OUTPUT/points/<key>=<value>/` made by
`run_pipeline`. Points whose descriptor settings (bovw.pipeline.provenance.DescriptorSettings:
orb.*, colour.* and tone.* but their weights, ingest.*, seed, vocabulary.sample_per_image)
are the same read the descriptors of the first such point, or those of an earlier run given with
`descriptors_from` when its record matches them; the others extract their own. A point
whose summary.json exists is finished and skipped, so a sweep started again with the same
output resumes at the first unfinished point (and run_pipeline resumes that point at its
first unfinished stage); one given more values of its parameters (bovw.experiments.grids:
added_values) keeps its finished points too, and a point that started extracting its
descriptors stays its group's source. After every point the table (CSV and Markdown) is
rewritten.

A point whose settings cannot give a result (a classifier that did not train, a vocabulary
larger than the descriptors: POINT_ERRORS) is failed, not fatal: its reason goes to
`points/<name>/failed.json` and to the table, without numbers, the plots and the choice of
the best point leave it out, and the other points still run. It has no summary.json, so a
resumed sweep runs it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pyspark.sql import SparkSession

from bovw.config import Config
from bovw.errors import TrainingError, VocabularyError
from bovw.experiments.grids import (
    SweepPoint,
    added_values,
    changes_descriptors,
    descriptor_sources,
    grid_text,
    parse_parameter,
    sweep_points,
)
from bovw.experiments.tables import (
    NOT_FINISHED,
    STAGE_COLUMNS,
    csv_table,
    failed_sweep_row,
    sweep_cell,
    sweep_columns,
    sweep_markdown,
    sweep_row,
    sweep_title,
    unfinished_sweep_row,
)
from bovw.pipeline.layout import Growth, RunLayout, prepare_spec_folder, run_difference
from bovw.pipeline.provenance import (
    DescriptorProvenance,
    check_kept,
    read_record,
    refuse_changed_since,
)
from bovw.pipeline.run import run_pipeline
from bovw.report import report_drawer
from bovw.spark import leases, storage
from bovw.spark.outputs import OutputFolder
from bovw.spark.progress import StageProgress
from bovw.summary import RunSummary

__all__ = ["FAILURE_RECORD", "POINT_ERRORS", "SweepPoint", "SweepResult", "changes_descriptors",
           "collect_result", "descriptor_sources", "parse_parameter", "run_sweep", "sweep_points",
           "write_report", "write_table"]

# Errors that belong to one point's settings: that point fails, the sweep goes on.
POINT_ERRORS = (TrainingError, VocabularyError)
FAILURE_RECORD = "failed.json"


@dataclass
class SweepResult:
    """The table rows (one per point, in grid order) and where the outputs went."""

    output: str
    parameters: list[tuple[str, list[str]]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # The points' names in grid order, which the rows keep whatever order the points ran in.
    point_names: list[str] = field(default_factory=list)

    def add(self, row: dict[str, Any]) -> None:
        """Add a point's table row (its "point" one of point_names), in grid order."""
        self.rows.append(row)
        self.rows.sort(key=lambda row: self.point_names.index(row["point"]))

    @property
    def keys(self) -> list[str]:
        """The swept settings, in grid order."""
        return [key for key, _values in self.parameters]

    @property
    def failed(self) -> list[tuple[str, str]]:
        """(point, reason) of every failed point, in grid order."""
        return [(row["point"], row["failure"]) for row in self.rows if _failed(row)]

    @property
    def succeeded(self) -> list[dict[str, Any]]:
        """The rows of the points that gave results."""
        return [row for row in self.rows if row.get("status") == "ok"]

    @property
    def unfinished(self) -> list[str]:
        """The points not finished yet (a sweep stopped before them), in grid order."""
        return [row["point"] for row in self.rows if row.get("status") == NOT_FINISHED]


def _failed(row: dict[str, Any]) -> bool:
    return row.get("status") == "failed"


def run_sweep(spark: SparkSession, config: Config, input_path: str, output_path: str,
              parameters: Sequence[tuple[str, Sequence[str]]], *,
              descriptors_from: str | None = None, overwrite: bool = False,
              report: bool = True, log: Callable[[str], None] = print,
              progress: StageProgress | None = None) -> SweepResult:
    """Run the pipeline at every point of the grid, skipping finished points; `progress`
    shows the stages of each point (bovw.spark.progress).

    Returns a SweepResult whose rows also went to `sweep.csv` and `sweep.md` under
    `output_path`; with `report`, every point gets its report.html and the sweep one
    (table, curves, the best point's details). A point raising one of POINT_ERRORS is
    recorded as failed (`result.failed`) and the sweep goes on. Raises ConfigError,
    OutputError (and the pipeline's other errors).
    """
    root = output_path.rstrip("/") or "/"
    points = sweep_points(config, parameters)
    spec = {"input": input_path, "descriptors_from": descriptors_from,
            "parameters": [[key, list(values)] for key, values in parameters],
            "config": config.to_dict()}
    # Reused descriptors are checked against every point before anything is written.
    reused = None
    if descriptors_from:
        if overwrite:
            check_kept(descriptors_from, root)
        reused = read_record(spark, descriptors_from)
    descriptor_sources(config, points, input_path, root, descriptors_from, reused)
    if reused is not None:
        # Here, not at the first point that reads them: the sweep's folder would be made
        # for nothing, and the same command without --descriptors-from refused into it.
        refuse_changed_since(spark, descriptors_from, reused, input_path, config)
    # Written into the output, or beside it and swapped in once complete (--overwrite).
    with _prepare_sweep_output(spark, root, spec, overwrite, log) as output:
        result = _run_points(spark, config, input_path, output.work, parameters, points,
                             descriptors_from, reused, report, log, progress)
    result.output = root
    return result


def _run_points(spark: SparkSession, config: Config, input_path: str, root: str,
                parameters: Sequence[tuple[str, Sequence[str]]], points: list[SweepPoint],
                descriptors_from: str | None, reused: DescriptorProvenance | None,
                report: bool, log: Callable[[str], None], progress: StageProgress | None
                ) -> SweepResult:
    # Planned again under the folder the points are written to (the staging one when
    # overwriting), so shared descriptors are read from where they are.
    sources = descriptor_sources(config, points, input_path, root, descriptors_from, reused,
                                 extractors=_started_extractors(spark, root, points))
    result = SweepResult(output=root, parameters=[(k, list(v)) for k, v in parameters],
                         point_names=[point.name for point in points])
    for at in _run_order(root, points, sources):
        point, source, number = points[at], sources[at], at + 1
        layout = RunLayout(storage.join(root, "points", point.name))
        title = f"bovw sweep point {point.name}"
        failure_path = layout.path(FAILURE_RECORD)
        if storage.exists(spark, layout.summary):
            foreign = _foreign_run(spark, layout, input_path, config.replace(**point.values))
            if foreign:
                log(f"[bovw] sweep point {number}/{len(points)} {point.name}: failed: {foreign}")
                result.add(failed_sweep_row(point.name, point.values, foreign))
                write_table(spark, root, result)
                continue
            log(f"[bovw] sweep point {number}/{len(points)} {point.name}: finished, skipped")
            result.skipped.append(point.name)
        else:
            again = " (it failed before)" if storage.exists(spark, failure_path) else ""
            log(f"[bovw] sweep point {number}/{len(points)} {point.name}: running{again}")
            try:
                run_pipeline(spark, config.replace(**point.values), input_path, layout.root,
                             descriptors_from=source, log=log, progress=progress,
                             report=report_drawer(spark, title) if report else None)
            except POINT_ERRORS as error:
                log(f"[bovw] sweep point {number}/{len(points)} {point.name}: failed: {error}")
                # Both point errors come after the descriptors stage: the points planned
                # to share this point's descriptors still find them.
                storage.write_text(spark, failure_path, json.dumps(
                    {"error": type(error).__name__, "reason": str(error)}, indent=2))
                result.add(failed_sweep_row(point.name, point.values, str(error)))
                write_table(spark, root, result)
                continue
            storage.delete(spark, failure_path)  # an earlier failure, now superseded
        summary = RunSummary.from_json(storage.read_text(spark, layout.summary))
        result.add(sweep_row(point.name, point.values, summary))
        write_table(spark, root, result)
        if report and not storage.exists(spark, layout.path("report.html")):
            # Finished earlier without it (a sweep stopped while drawing it, or run with
            # --no-report): drawn holding the point's lock, as its run would have.
            leases.holding(spark, layout.root, "bovw sweep",
                           partial(report_drawer(spark, title), layout.root))
    if report:
        write_report(spark, result)
    return result


def _run_order(root: str, points: Sequence[SweepPoint], sources: Sequence[str | None]
               ) -> list[int]:
    """The points' indexes in the order they run: the grid's, except that a point whose
    descriptors an earlier point reads runs just before it (a grid that grew can put a
    new point before the one that started extracting their descriptors)."""
    extractor = {storage.join(root, "points", point.name, "descriptors"): at
                 for at, point in enumerate(points)}
    order: list[int] = []
    for at, source in enumerate(sources):
        for index in (extractor.get(source), at):
            if index is not None and index not in order:
                order.append(index)
    return order


def _started_extractors(spark: SparkSession, root: str, points: Sequence[SweepPoint]
                        ) -> frozenset[str]:
    """The points that started extracting their own descriptors (their run.json reads
    none): they stay their group's source when a grid that grew puts a new point first."""
    started = set()
    for point in points:
        spec = RunLayout(storage.join(root, "points", point.name)).run_spec
        if storage.exists(spark, spec) and json.loads(
                storage.read_text(spark, spec)).get("descriptors_from") is None:
            started.add(point.name)
    return frozenset(started)


def collect_result(spark: SparkSession, root: str) -> SweepResult:
    """The SweepResult of a sweep folder, from its sweep.json: a row per point, finished,
    failed or not finished yet."""
    from bovw.config import config_from_dict

    root = root.rstrip("/")
    spec = json.loads(storage.read_text(spark, storage.join(root, "sweep.json")))
    result = SweepResult(root, [(key, list(values)) for key, values in spec["parameters"]])
    for point in sweep_points(config_from_dict(spec["config"]), result.parameters,
                              planned=False):
        summary_path = storage.join(root, "points", point.name, "summary.json")
        failure_path = storage.join(root, "points", point.name, FAILURE_RECORD)
        foreign = storage.exists(spark, summary_path) and _foreign_run(
            spark, RunLayout(storage.join(root, "points", point.name)), spec["input"],
            config_from_dict(spec["config"]).replace(**point.values))
        if foreign:
            result.rows.append(failed_sweep_row(point.name, point.values, foreign))
        elif storage.exists(spark, summary_path):
            summary = RunSummary.from_json(storage.read_text(spark, summary_path))
            result.rows.append(sweep_row(point.name, point.values, summary))
        elif storage.exists(spark, failure_path):
            failure = json.loads(storage.read_text(spark, failure_path))
            result.rows.append(failed_sweep_row(point.name, point.values, failure["reason"]))
        else:  # a sweep stopped before it: a row that says so, not a grid without it
            result.rows.append(unfinished_sweep_row(point.name, point.values))
    return result


def _foreign_run(spark: SparkSession, layout: RunLayout, input_path: str, config: Config
                 ) -> str | None:
    """Why the finished run in a point's folder is not this sweep's point (a run of other
    settings put there by hand: the sweep took it for its point, and its report showed its
    numbers on the point's row, review 5), or None when it is."""
    difference = run_difference(spark, layout, input_path, config.to_dict())
    if difference is None:
        return None
    return (f"{layout.root} holds a finished run of other settings ({difference}), not "
            "this sweep's point; move it away (the sweep then runs the point) or pass "
            "--overwrite")


def write_report(spark: SparkSession, result: SweepResult) -> str:
    """The sweep's report.html: its table, the curves, and the best point's details."""
    from bovw.report.html import html_table
    from bovw.report.pages import SweepPointResult, write_sweep_report

    columns = [c for c in sweep_columns(result.keys) if c != "point"]
    succeeded = result.succeeded
    best = max(succeeded, key=lambda row: row.get("accuracy") or 0.0)["point"] \
        if succeeded else None
    rows = [[sweep_cell(c, row.get(c)) for c in columns] for row in result.rows]
    marks = [["best" if row["point"] == best and c in ("accuracy", "macro_f1") else ""
              for c in columns] for row in result.rows]
    keys = result.keys
    titles = [sweep_title(c, keys) for c in columns]
    points = [SweepPointResult(
        values={key: row[key] for key in keys}, accuracy=row.get("accuracy"),
        macro_f1=row.get("macro_f1"),
        seconds={stage: row[f"seconds_{stage}"] for stage in (*STAGE_COLUMNS, "total")
                 if row.get(f"seconds_{stage}") is not None},
        failed=row.get("status") != "ok") for row in result.rows]
    return write_sweep_report(spark, result.output, result.parameters, points,
                              html_table(titles, rows, marks, css="wide"), best)


def _prepare_sweep_output(spark: SparkSession, root: str, spec: dict[str, Any],
                          overwrite: bool, log: Callable[[str], None]) -> OutputFolder:
    return prepare_spec_folder(spark, root, "sweep.json", spec, overwrite, "sweep",
                               "sweep of another input, grid or configuration", log,
                               grows=Growth("parameters", added_values, grid_text))


def write_table(spark: SparkSession, root: str, result: SweepResult) -> None:
    """Write sweep.csv and sweep.md (called after every point, so they show progress)."""
    storage.write_text(spark, storage.join(root, "sweep.csv"),
                       csv_table(sweep_columns(result.keys), result.rows))
    storage.write_text(spark, storage.join(root, "sweep.md"),
                       sweep_markdown(result.keys, result.rows))
