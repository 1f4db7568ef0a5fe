"""Visual words against CNN features, on the same images, split, PCA, classifier and metrics.

Variants (each a run folder under `OUTPUT/variants/<name>/`):
  orb         the bag-of-visual-words pipeline, grey-level ORB words only
  orb-colour  the same with the HSV colour block appended (bovw.image.colour)
  cnn         CNN features, from a Parquet file made elsewhere or the built-in extractor
              (bovw.experiments.cnn_variant)
The CNN rows are joined by path to the images the ORB variants read (or, without them,
to the ingested listing), so every variant is scored on the same Test images.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pyspark.sql import SparkSession

from bovw.config import Config, ConfigError
from bovw.experiments.cnn_variant import run_cnn_variant
from bovw.experiments.external import load_external_features
from bovw.experiments.tables import (
    comparison_cell,
    comparison_columns,
    comparison_row,
    csv_table,
    markdown_lines,
    unfinished_comparison_row,
)
from bovw.pipeline.layout import RunLayout, finished_stage, prepare_spec_folder
from bovw.pipeline.provenance import (
    IMAGE_SET_KEYS,
    DescriptorProvenance,
    check_kept,
    first_difference,
    read_record,
    refusal,
    refuse_changed_since,
)
from bovw.pipeline.run import run_pipeline
from bovw.report import report_drawer
from bovw.spark import leases, storage
from bovw.spark.outputs import OutputFolder
from bovw.spark.progress import StageProgress
from bovw.spark.workers import worker_imports_named
from bovw.summary import RunSummary

__all__ = ["ORB_VARIANTS", "VARIANTS", "CompareResult", "check_shared_descriptors",
           "collect_result", "compare", "parse_variants", "per_class_f1",
           "write_outputs", "write_tables"]

VARIANTS = ("orb", "orb-colour", "cnn")
ORB_VARIANTS = {"orb": False, "orb-colour": True}  # name -> colour block on


@dataclass
class CompareResult:
    """One table row per variant, and the finished variants' run folders."""

    output: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    folders: list[tuple[str, str]] = field(default_factory=list)

    @property
    def unfinished(self) -> list[str]:
        """The variants not finished yet (a comparison stopped before them)."""
        finished = {name for name, _folder in self.folders}
        return [row["variant"] for row in self.rows if row["variant"] not in finished]


def parse_variants(text: str) -> tuple[str, ...]:
    """"orb,cnn" -> ("orb", "cnn"). Raises ConfigError on an unknown or repeated name."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in VARIANTS]
    if not names or unknown:
        raise ConfigError(f"--variants takes a list of {', '.join(VARIANTS)} "
                          f"(got {text!r})")
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:
        raise ConfigError(f"--variants lists {twice} twice ({text}); name each variant once")
    return names


# ---------------------------------------------------------------- the comparison

def compare(spark: SparkSession, config: Config, input_path: str, output_path: str, *,
            variants: Sequence[str] = VARIANTS, cnn_features: str | None = None,
            descriptors_from: str | None = None, overwrite: bool = False, report: bool = True,
            log: Callable[[str], None] = print, progress: StageProgress | None = None
            ) -> CompareResult:
    """Run each variant (skipping finished ones) and write comparison.csv/.md and report.html;
    `progress` shows the stages of the ORB variants (bovw.spark.progress).

    The ORB variants extract their own descriptors (the first variant's times include the
    session's warm-up) unless `descriptors_from` names an earlier run's, read by both. The cnn
    variant reads `cnn_features` (Parquet) when given, else runs `config.cnn.backbone`.
    Returns a CompareResult. Raises ConfigError, OutputError, CompareError, CnnError,
    WorkerError (bovw.spark.workers.worker_imports_named).
    """
    variants = parse_variants(",".join(variants))
    root = output_path.rstrip("/") or "/"
    spec = {"input": input_path, "variants": list(variants), "cnn_features": cnn_features,
            "descriptors_from": descriptors_from, "config": config.to_dict()}
    if descriptors_from:
        check_shared_descriptors(spark, descriptors_from, config, input_path, variants,
                                 root if overwrite else None)
    if "cnn" in variants:
        _check_cnn_source(spark, config, cnn_features)
    # Written into the output, or beside it and swapped in once complete (--overwrite).
    with _prepare(spark, root, spec, overwrite, log) as output:
        result = _run_variants(spark, config, input_path, output.work, variants, cnn_features,
                               descriptors_from, report, log, progress)
    result.output = root
    result.folders = [(name, root + folder.removeprefix(output.work))
                      for name, folder in result.folders]
    return result


def _run_variants(spark: SparkSession, config: Config, input_path: str, root: str,
                  variants: Sequence[str], cnn_features: str | None,
                  descriptors_from: str | None, report: bool, log: Callable[[str], None],
                  progress: StageProgress | None) -> CompareResult:
    result = CompareResult(output=root)
    images_source: str | None = descriptors_from
    for name in variants:
        layout = RunLayout(storage.join(root, "variants", name))
        title = f"bovw comparison variant {name}"
        if storage.exists(spark, layout.summary):
            log(f"[bovw] compare {name}: finished, skipped")
        elif name in ORB_VARIANTS:
            log(f"[bovw] compare {name}: running")
            run_pipeline(spark, _orb_config(config, name), input_path, layout.root,
                         descriptors_from=descriptors_from, log=log, progress=progress,
                         report=report_drawer(spark, title) if report else None)
        else:
            log(f"[bovw] compare {name}: running")
            # run_pipeline names a module its workers lack in one line; so does this.
            with worker_imports_named():
                run_cnn_variant(spark, config, input_path, layout, images_source,
                                cnn_features, log, progress)
        summary = RunSummary.from_json(storage.read_text(spark, layout.summary))
        if name in ORB_VARIANTS and images_source is None:
            images_source = (finished_stage(spark, layout, "descriptors") or {}).get(
                "descriptors_path")
        result.rows.append(comparison_row(name, summary, ORB_VARIANTS.get(name)))
        result.folders.append((name, layout.root))
        if report and not storage.exists(spark, layout.path("report.html")):
            # A CNN variant, or one finished earlier without it: drawn holding its lock.
            leases.holding(spark, layout.root, "bovw compare",
                           partial(report_drawer(spark, title), layout.root))
    write_outputs(spark, result, report)
    return result


def collect_result(spark: SparkSession, root: str) -> CompareResult:
    """The CompareResult of a comparison folder: a row per variant of its compare.json,
    those not finished yet (a comparison stopped before them) marked so, without numbers."""
    root = root.rstrip("/")
    spec = json.loads(storage.read_text(spark, storage.join(root, "compare.json")))
    result = CompareResult(output=root)
    for name in spec["variants"]:
        layout = RunLayout(storage.join(root, "variants", name))
        if storage.exists(spark, layout.summary):
            summary = RunSummary.from_json(storage.read_text(spark, layout.summary))
            result.rows.append(comparison_row(name, summary, ORB_VARIANTS.get(name)))
            result.folders.append((name, layout.root))
        else:
            result.rows.append(unfinished_comparison_row(name))
    return result


def write_outputs(spark: SparkSession, result: CompareResult, report: bool) -> None:
    """The tables, and with `report` the comparison's report.html."""
    write_tables(spark, result)
    if report:
        from bovw.report.html import html_table
        from bovw.report.pages import write_compare_report

        columns = comparison_columns()
        rows = [[comparison_cell(c, row.get(c)) for c in columns] for row in result.rows]
        write_compare_report(spark, result.output,
                             html_table([c.replace("_", " ") for c in columns], rows,
                                        css="wide"),
                             result.folders)


def check_shared_descriptors(spark: SparkSession, source: str, config: Config,
                             input_path: str, variants: Sequence[str],
                             overwritten: str | None = None) -> None:
    """Refuse, before any work, descriptors every variant would read but some contradict.

    The ORB variants read them whole (all descriptor settings must match, the colour
    block for orb-colour); the cnn variant takes its image list from them (input, ingest,
    seed and orb.max_pixels must match). `overwritten` is the output --overwrite deletes.
    Raises ReuseError.
    """
    if overwritten is not None:
        check_kept(source, overwritten)
    made = read_record(spark, source)
    for name in variants:
        asked = _orb_config(config, name) if name in ORB_VARIANTS else config
        difference = first_difference(made, DescriptorProvenance.of(asked, input_path),
                                      None if name in ORB_VARIANTS else IMAGE_SET_KEYS)
        if difference is not None:
            raise refusal(source, difference, f"variant {name}")
    refuse_changed_since(spark, source, made, input_path, config)


def _check_cnn_source(spark: SparkSession, config: Config, cnn_features: str | None) -> None:
    """Refuse, before the output is created, a features file bovw cannot use (a missing
    column, non-finite values, ...) or a backbone that cannot be loaded (a missing
    package or weights file). Raises CompareError or CnnError."""
    if cnn_features:
        load_external_features(spark, cnn_features, config)
    else:
        from bovw.experiments.cnn import load_backbone

        load_backbone(config.cnn)


def _orb_config(config: Config, name: str) -> Config:
    return config.replace(**{"colour.enabled": ORB_VARIANTS[name]})


def _prepare(spark: SparkSession, root: str, spec: dict[str, Any], overwrite: bool,
             log: Callable[[str], None]) -> OutputFolder:
    return prepare_spec_folder(spark, root, "compare.json", spec, overwrite, "comparison",
                               "comparison of another input, variant list, feature file or "
                               "configuration", log)


# ---------------------------------------------------------------- tables

def per_class_f1(spark: SparkSession, result: CompareResult) -> tuple[list[str], list[list]]:
    """(header, rows) of F1 per class, one column per variant."""
    per_variant = [(name, json.loads(storage.read_text(spark, RunLayout(folder).metrics)))
                   for name, folder in result.folders]
    classes: list[str] = []
    for _name, metrics in per_variant:
        classes.extend(c for c in metrics.get("classes", []) if c not in classes)
    rows = [[label, *[metrics.get("per_class", {}).get(label, {}).get("f1")
                      for _name, metrics in per_variant]] for label in classes]
    return ["class", *[name for name, _metrics in per_variant]], rows


def write_tables(spark: SparkSession, result: CompareResult) -> None:
    """comparison.csv, comparison_per_class.csv and comparison.md (both tables)."""
    columns = comparison_columns()
    storage.write_text(spark, storage.join(result.output, "comparison.csv"),
                       csv_table(columns, result.rows))
    header, rows = per_class_f1(spark, result)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    storage.write_text(spark, storage.join(result.output, "comparison_per_class.csv"),
                       buffer.getvalue())
    lines = markdown_lines([c.replace("_", " ") for c in columns],
                           [[comparison_cell(c, row.get(c)) for c in columns]
                            for row in result.rows])
    lines += ["", "F1 per class (Test):", ""]
    lines += markdown_lines(header, [[row[0], *["" if value is None else f"{value:.3f}"
                                                for value in row[1:]]] for row in rows])
    storage.write_text(spark, storage.join(result.output, "comparison.md"),
                       "\n".join(lines) + "\n")
