"""The run folder: where each output lives, and which stages have finished.

A stage writes its outputs, then a marker `_stages/<stage>.json`; a stage without its
marker is redone when the run is started again with the same output folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from bovw import storage
from bovw.errors import OutputError


@dataclass(frozen=True)
class RunLayout:
    """Paths inside one run folder (local path or URL)."""

    root: str

    def path(self, *parts: str) -> str:
        return storage.join(self.root, *parts)

    @property
    def descriptors(self) -> str:
        return self.path("descriptors")

    @property
    def rejects(self) -> str:
        return self.path("rejects")

    @property
    def histograms(self) -> str:
        return self.path("histograms")

    @property
    def features(self) -> str:
        return self.path("features")

    def model(self, name: str) -> str:
        return self.path("models", name)

    @property
    def metrics(self) -> str:
        return self.path("metrics.json")

    @property
    def summary(self) -> str:
        return self.path("summary.json")

    @property
    def run_spec(self) -> str:
        return self.path("run.json")

    def marker(self, stage: str) -> str:
        return self.path("_stages", f"{stage}.json")


def prepare_output(spark: SparkSession, layout: RunLayout, spec: dict[str, Any],
                   overwrite: bool) -> None:
    """Make `layout.root` ready for the run described by `spec` (input and effective config).

    A new folder is started; an unfinished run of the same spec is resumed; a finished
    run, or an unfinished one of another spec, is refused unless `overwrite` (then it is
    deleted). Raises OutputError.
    """
    if overwrite:
        storage.delete(spark, layout.root)
    elif storage.exists(spark, layout.summary):
        raise OutputError(
            f"output {layout.root} already holds a finished run; "
            "choose another --output or pass --overwrite to replace it"
        )
    elif storage.exists(spark, layout.run_spec):
        earlier = json.loads(storage.read_text(spark, layout.run_spec))
        if earlier != spec:
            raise OutputError(
                f"output {layout.root} holds an unfinished run with a different input or "
                "configuration; use the same ones to resume it, or pass --overwrite"
            )
        return
    elif storage.list_names(spark, layout.root):
        raise OutputError(
            f"output {layout.root} exists and is not a bovw run folder; "
            "choose an empty or new folder"
        )
    storage.write_text(spark, layout.run_spec, json.dumps(spec, indent=2, sort_keys=True))


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
                        overwrite: bool, kind: str, differs: str) -> None:
    """Start, resume or (with `overwrite`) replace a folder described by `spec_name`.

    Used by sweeps and comparisons: the same spec resumes, another spec is refused with
    "output ROOT holds a {differs}", and a non-empty folder without the spec file is
    refused as "not a bovw {kind} folder". Raises OutputError.
    """
    spec_path = storage.join(root, spec_name)
    if overwrite:
        storage.delete(spark, root)
    elif storage.exists(spark, spec_path):
        if json.loads(storage.read_text(spark, spec_path)) != spec:
            raise OutputError(f"output {root} holds a {differs}; use the same ones to resume "
                              "it, another --output, or --overwrite")
        return
    elif storage.list_names(spark, root):
        raise OutputError(f"output {root} exists and is not a bovw {kind} folder; "
                          "choose an empty or new folder")
    storage.write_text(spark, spec_path, json.dumps(spec, indent=2, sort_keys=True))
