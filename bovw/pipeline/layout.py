"""The run folder: where each output lives, and which stages have finished.

A stage writes its outputs, then a marker `_stages/<stage>.json`; a stage without its
marker is redone when the run is started again with the same output folder. Opening,
locking and replacing output folders is bovw.spark.outputs' business.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pyspark.sql import SparkSession

from bovw.config.differences import (
    SESSION_ONLY_SETTINGS,
    Difference,
    first_nested_difference,
    show,
)
from bovw.errors import OutputError
from bovw.spark import storage
from bovw.spark.outputs import OutputFolder, open_output

__all__ = ["Growth", "RunLayout", "finished_stage", "mark_finished", "prepare_output",
           "prepare_spec_folder", "run_difference"]


class Growth(NamedTuple):
    """A spec key whose value may grow on resume (a sweep's grid): `judge(recorded, asked)`
    says what the asked value adds to the recorded one (None: it does not only add), and
    `shown(value)` writes a value of it in a refusal as the user gives it."""

    key: str
    judge: Callable[[Any, Any], str | None]
    shown: Callable[[Any], str]


@dataclass(frozen=True)
class RunLayout:
    """Paths inside one run folder (local path or URL)."""

    root: str

    def path(self, *parts: str) -> str:
        """`parts` joined below the run folder."""
        return storage.join(self.root, *parts)

    @property
    def descriptors(self) -> str:
        """The descriptors Parquet (DESCRIPTOR_SCHEMA rows)."""
        return self.path("descriptors")

    @property
    def rejects(self) -> str:
        """The Parquet of the rejected images and why."""
        return self.path("rejects")

    @property
    def histograms(self) -> str:
        """The Parquet of the raw word histograms, one row per accepted image."""
        return self.path("histograms")

    @property
    def projections(self) -> str:
        """The Parquet of every accepted image's PCA projection (the reduction stage's
        output, the classifier stage's input)."""
        return self.path("projections")

    @property
    def features(self) -> str:
        """The Parquet of the classified images: PCA features, prediction, probability."""
        return self.path("features")

    def model(self, name: str) -> str:
        """The folder of the Spark ML model `name` (vocabulary, idf, pca, labels, classifier)."""
        return self.path("models", name)

    @property
    def metrics(self) -> str:
        """metrics.json: every number the evaluation on the Test images measured."""
        return self.path("metrics.json")

    @property
    def summary(self) -> str:
        """summary.json (bovw.summary.RunSummary); present only once the run finished."""
        return self.path("summary.json")

    @property
    def run_spec(self) -> str:
        """run.json: the run's input and effective config, compared on resume."""
        return self.path("run.json")

    def marker(self, stage: str) -> str:
        """The completion marker of `stage` (its record: timings, counts)."""
        return self.path("_stages", f"{stage}.json")


def prepare_output(spark: SparkSession, layout: RunLayout, spec: dict[str, Any],
                   overwrite: bool, log: Callable[[str], None] = print,
                   draws_report: bool = False) -> OutputFolder:
    """Lock `layout.root` and make it ready for the run described by `spec` (input and
    effective config); use the result in a `with` block and write into its `work` folder.

    A new folder is started; an unfinished run of the same spec is resumed; so is a
    finished run of the same spec without its report.html when the run `draws_report`
    (it was stopped while drawing it: every stage is reused and the report drawn). A
    finished run otherwise, or an unfinished one of another spec, is refused unless
    `overwrite`: the new run is then built beside it and replaces it once finished
    (bovw.spark.outputs). A folder or file that is not a bovw run is refused either way.
    Raises OutputError.
    """
    spec = _recorded(spec)
    def resume(folder: str) -> None:
        if storage.exists(spark, storage.join(folder, "summary.json")):
            reported = storage.exists(spark, storage.join(folder, "report.html"))
            if (not reported and draws_report
                    and _difference(spark, folder, "run.json", spec) is None):
                log(f"[bovw] {layout.root} holds this finished run without its report.html: "
                    "reusing every stage to draw it")
                return
            # A run stopped while it drew its report is finished: --overwrite would redo it all.
            missing = "" if reported else (
                f" (without its report.html: bovw report {layout.root} draws it)")
            raise OutputError(
                f"output {layout.root} already holds a finished run{missing}; "
                "choose another --output or pass --overwrite to replace it"
            )
        if storage.exists(spark, storage.join(folder, "run.json")):
            difference = _difference(spark, folder, "run.json", spec)
            if difference is not None:
                raise OutputError(
                    f"output {layout.root} holds an unfinished run with a different input or "
                    f"configuration ({_said(difference)}); use the same ones to resume it, "
                    "or pass --overwrite"
                )
            return
        start(folder)

    def start(folder: str) -> None:
        storage.write_text(spark, storage.join(folder, "run.json"),
                           json.dumps(spec, indent=2, sort_keys=True))

    return open_output(spark, layout.root, "run", overwrite=overwrite, resume=resume,
                       matches=lambda folder: _resumable(spark, folder, "run.json", spec),
                       start=start, reads=_read_paths(spec), log=log)


def run_difference(spark: SparkSession, layout: RunLayout, input_path: str,
                   config: dict[str, Any]) -> str | None:
    """How the run `layout` records (its run.json) differs from a run of `config` (a
    Config.to_dict()) on `input_path`, said for a message ("vocabulary.k 12 there, 8
    here"), or None when it is that run. The descriptors it read are not compared, and
    settings that cannot change results may differ, as on resume."""
    recorded = json.loads(storage.read_text(spark, layout.run_spec))
    spec = _recorded({"input": input_path, "descriptors_from": recorded.get("descriptors_from"),
                      "config": config})
    difference = first_nested_difference(recorded, spec, _RESUMABLE_CHANGES)
    return None if difference is None else _said(difference)


def finished_stage(spark: SparkSession, layout: RunLayout, stage: str) -> dict[str, Any] | None:
    """The record a finished stage left, or None when the stage must (re)run."""
    marker = layout.marker(stage)
    if not storage.exists(spark, marker):
        return None
    return json.loads(storage.read_text(spark, marker))


def mark_finished(spark: SparkSession, layout: RunLayout, stage: str, record: dict[str, Any]
                  ) -> None:
    """Record that `stage` finished, with its timings and counts."""
    storage.write_text(spark, layout.marker(stage), json.dumps(record, indent=2, sort_keys=True))


def prepare_spec_folder(spark: SparkSession, root: str, spec_name: str, spec: dict[str, Any],
                        overwrite: bool, kind: str, differs: str,
                        log: Callable[[str], None] = print,
                        grows: Growth | None = None) -> OutputFolder:
    """Lock, start, resume or (with `overwrite`) replace a folder described by `spec_name`;
    use the result in a `with` block and write into its `work` folder.

    Used by sweeps (`kind` "sweep") and comparisons ("comparison"): the same spec resumes,
    another spec is refused with "output ROOT holds a {differs}" unless `overwrite` (the
    new folder is then built beside the old one and replaces it once complete), and a
    folder or file that is not a bovw `kind` folder is refused either way. With `grows`
    (a Growth), a spec that differs from the recorded one only in its key, where its judge
    says what it adds, resumes too, with the new spec recorded (a sweep's grid given more
    values). Raises OutputError.
    """
    spec = _recorded(spec)
    def resume(folder: str) -> None:
        if not storage.exists(spark, storage.join(folder, spec_name)):
            start(folder)
        elif (difference := _difference(spark, folder, spec_name, spec)) is not None:
            added = _grown(spark, folder, spec_name, spec, grows)
            if added is None:
                # Asked for less than it holds (a grid that grew, asked again as it was):
                # what is asked for is there already.
                more = _grown(spark, folder, spec_name, spec, grows, backwards=True)
                there = "" if more is None else (
                    f"; it holds all this asks for and more ({more}): bovw report {root} "
                    "shows it")
                raise OutputError(f"output {root} holds a {differs} "
                                  f"({_said(difference, grows)}){there}; use "
                                  "the same ones to resume it, another --output, or "
                                  "--overwrite")
            log(f"[bovw] {root}: the {kind} grows by {added}; what it finished is reused")
            start(folder)

    def start(folder: str) -> None:
        storage.write_text(spark, storage.join(folder, spec_name),
                           json.dumps(spec, indent=2, sort_keys=True))

    return open_output(spark, root, kind, overwrite=overwrite, resume=resume,
                       matches=lambda folder: _resumable(spark, folder, spec_name, spec),
                       start=start, reads=_read_paths(spec), log=log)


# What a spec may change on resume: its config's session-only settings.
_RESUMABLE_CHANGES = tuple(f"config.{key}" for key in SESSION_ONLY_SETTINGS)


def _difference(spark: SparkSession, folder: str, spec_file: str, spec: dict[str, Any]
                ) -> Difference | None:
    """The first difference that stops `folder` (holding `spec_file`) from resuming as
    `spec`; settings that cannot change results (SESSION_ONLY_SETTINGS) may differ."""
    recorded = json.loads(storage.read_text(spark, storage.join(folder, spec_file)))
    return first_nested_difference(recorded, spec, _RESUMABLE_CHANGES)


def _grown(spark: SparkSession, folder: str, spec_file: str, spec: dict[str, Any],
           grows: Growth | None, backwards: bool = False) -> str | None:
    """What `spec` adds to the one `folder` records when it differs from it only in the
    key `grows` names and its judge says it only adds, else None; `backwards`: what the
    recorded one adds to `spec`."""
    if grows is None:
        return None
    key, judge, _shown = grows
    recorded = json.loads(storage.read_text(spark, storage.join(folder, spec_file)))
    if first_nested_difference(recorded, spec, (*_RESUMABLE_CHANGES, key)) is not None:
        return None
    older, newer = recorded.get(key), spec.get(key)
    return judge(newer, older) if backwards else judge(older, newer)


def _resumable(spark: SparkSession, folder: str, spec_file: str, spec: dict[str, Any]) -> bool:
    return (storage.exists(spark, storage.join(folder, spec_file))
            and _difference(spark, folder, spec_file, spec) is None)


def _said(difference: Difference, grows: Growth | None = None) -> str:
    key = difference.key.removeprefix("config.")
    written = grows.shown if grows is not None and grows.key == difference.key else show

    def value(found: Any) -> str:
        return "not set" if found is None else written(found)
    return f"{key} {value(difference.made)} there, {value(difference.asked)} here"


# The paths a command reads, as its spec names them.
_READ_KEYS = ("input", "descriptors_from", "cnn_features")


def _recorded(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with the paths it reads made absolute: a run begun with `--input data` and
    started again from another folder with the same words reads other images, and must
    not resume the first one's stages."""
    return {key: storage.absolute(value) if key in _READ_KEYS and value else value
            for key, value in spec.items()}


def _read_paths(spec: dict[str, Any]) -> list[str | None]:
    return [spec.get(key) for key in _READ_KEYS]
