"""The `bovw predict` and `bovw export` commands (wired into bovw.cli).

    bovw export RUN_DIR [--out model.npz] [--fruits my-fruits.toml]
    bovw predict --model MODEL photo1.jpg photo2.png [--json] [--top 5]
    bovw predict --model MODEL --output preds/ FOLDER_OR_S3A_PREFIX [--labelled]

MODEL is a model file, or a run folder: its model.npz is used, and a finished run without
one is exported into it first (the only case where predicting files starts Spark).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bovw.cli.common import (
    PREDICT_KEYS,
    SESSION_KEYS,
    add_config_flags,
    config_of,
    location,
    overrides,
    refuse_unused,
    resolved,
    session,
    url,
)
from bovw.config import Config
from bovw.errors import ConfigError, InputError, ModelFileError
from bovw.locations import is_local_path
from bovw.pipeline.inputs import check_local_input, read_local_file
from bovw.predict.fruits import (
    FruitInfo,
    default_catalogue_path,
    load_catalogue,
)
from bovw.predict.model_file import MODEL_FILE_NAME
from bovw.predict.predictor import Predictor
from bovw.predict.results import Prediction
from bovw.predict.sources import runs_inside

__all__ = ["HANDLERS", "add_commands", "format_prediction"]


def add_commands(commands) -> None:
    """Add the `predict` and `export` sub-commands to the `bovw` parser's sub-parsers."""
    predict = commands.add_parser(
        "predict", help="say which fruit a photo shows (files: no Spark; a folder: Spark job)")
    predict.add_argument("inputs", nargs="+", metavar="PHOTO",
                         help="photo files, or one folder / s3a:// prefix (then --output)")
    predict.add_argument("--model", required=True,
                         help="model file from bovw export, or a finished run folder")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text")
    predict.add_argument("--top", type=int, help="how many classes to show (predict.top)")
    predict.add_argument("--fruits", help="fruit catalogue TOML replacing the model's own")
    predict.add_argument("--output", help="Parquet folder for the predictions of a folder")
    predict.add_argument("--overwrite", action="store_true",
                         help="replace an earlier predictions --output, once the new one is done")
    predict.add_argument("--labelled", action="store_true",
                         help="folder input: parent folders are the true classes; report accuracy")
    add_config_flags(predict)

    export = commands.add_parser(
        "export", help="write a finished run's model to one small file (no Spark to use it)")
    export.add_argument("run_dir", help="a finished run folder (local or s3a://)")
    export.add_argument("--out", help="model file to write (default RUN_DIR/model.npz)")
    export.add_argument("--fruits", help="fruit catalogue TOML to embed "
                        "(default: predict.fruits, else the catalogue bovw ships)")
    export.add_argument("--no-fruits", action="store_true", help="embed no fruit information")
    add_config_flags(export)


def _config(args: argparse.Namespace) -> Config:
    top = getattr(args, "top", None)
    return config_of(args, {"predict.top": top} if top is not None else {})


def _export_catalogue(args: argparse.Namespace, config: Config) -> dict[str, FruitInfo]:
    if args.no_fruits:
        given = "--fruits" if args.fruits else (
            "--set predict.fruits" if "predict.fruits" in overrides(args) else None)
        if given:
            raise ConfigError(f"--no-fruits embeds no catalogue and {given} names one; "
                              "fix: drop one of them")
        return {}
    path = args.fruits or config.predict.fruits or default_catalogue_path()
    return load_catalogue(path) if path else {}


def _export(args: argparse.Namespace, environ: dict) -> int:
    from bovw.predict.export import export_model

    config = _config(args)
    refuse_unused(args, (*SESSION_KEYS, "predict.fruits"),
                  "bovw export writes the model of the run as it was trained")
    catalogue = _export_catalogue(args, config)
    run_dir = url(args.run_dir)
    out = url(args.out) if args.out else None
    spark = session(config, environ, run_dir, out, verbose=args.verbose)
    run_dir, out = resolved(spark, run_dir, out)
    model, written = export_model(spark, run_dir, out, catalogue)
    print(_export_summary(model, written))
    return 0


def _export_summary(model, written: str) -> str:
    missing = [name for name in model.classes if name not in model.fruits]
    lines = [
        f"model written to {written}",
        f"  {len(model.classes)} classes, k={len(model.centers)} words, "
        f"{model.pc.shape[1]} PCA components, training size "
        f"{model.training_size[0]}x{model.training_size[1]}",
        f"  fruit information for {len(model.classes) - len(missing)} of "
        f"{len(model.classes)} classes" + (f" (none for: {', '.join(missing)})" if missing else ""),
    ]
    return "\n".join(lines)


class _Spark:
    """One SparkSession, started only when something needs it."""

    def __init__(self, config: Config, environ: dict, urls: list[str], verbose: bool):
        self.config, self.environ, self.urls, self.session = config, environ, urls, None
        self.verbose = verbose

    def __call__(self):
        if self.session is None:
            self.session = session(self.config, self.environ, *self.urls,
                                   verbose=self.verbose)
        return self.session


def _model_bytes(model: str, spark: _Spark, config: Config) -> tuple[bytes, str]:
    """The bytes of the model named by --model, exporting a run folder's model if needed."""
    from bovw.spark import storage

    if is_local_path(model):
        path = Path(model.removeprefix("file://").removeprefix("file:"))
        if path.is_file():
            return path.read_bytes(), str(path)
        if not path.is_dir():
            raise ModelFileError(f"model not found: {model}; give a model file from bovw export "
                                 "or a finished run folder")
        if (path / MODEL_FILE_NAME).is_file():
            return (path / MODEL_FILE_NAME).read_bytes(), str(path / MODEL_FILE_NAME)
        if not (path / "run.json").is_file():
            held = runs_inside(lambda name: (path / name).is_file())
            if held:
                what, inside = held
                raise ModelFileError(f"{model} is {what}, not a run folder or model file; "
                                     f"predict with one of its runs: --model "
                                     f"{str(path).rstrip('/')}/{inside}")
            raise ModelFileError(f"{model} is neither a model file nor a bovw run folder")
        model = str(path.resolve())
    else:
        from bovw.cloud.s3a import normalise_s3_url

        model = normalise_s3_url(model)
        if model.endswith(".npz"):
            return storage.read_bytes(spark(), model), model
    target = storage.join(model, MODEL_FILE_NAME)
    if not storage.exists(spark(), target):
        from bovw.predict.export import export_model

        print(f"[bovw] {model} has no {MODEL_FILE_NAME} yet: exporting it once", file=sys.stderr)
        default = default_catalogue_path()
        path = config.predict.fruits or default
        export_model(spark(), model, target, load_catalogue(path) if path else {})
    return storage.read_bytes(spark(), target), target


def _predict(args: argparse.Namespace, environ: dict) -> int:
    config = _config(args)
    refuse_unused(args, PREDICT_KEYS, "bovw predict describes photos with the model's "
                                      "settings")
    catalogue = load_catalogue(args.fruits) if args.fruits else None
    folders = [p for p in args.inputs if not is_local_path(p) or Path(p).is_dir()]
    if folders:
        return _predict_folder(args, environ, config, folders)
    if args.output or args.labelled or args.overwrite:
        raise InputError("--output, --overwrite and --labelled are for a folder or s3a:// "
                         "prefix input; for photo files the predictions are printed")
    spark = _Spark(config, environ, [args.model], args.verbose)
    model_bytes, source = _model_bytes(args.model, spark, config)
    predictor = Predictor.from_bytes(model_bytes, config.predict, catalogue, source)
    _check_asked_settings(args, config, predictor.model, source)
    results = [(path, _predict_file(predictor, Path(path), config.ingest.max_file_bytes))
               for path in args.inputs]
    if args.json:
        print(json.dumps({"model": source, "predictions": [
            {"path": path, **prediction.to_dict()} for path, prediction in results]}, indent=2))
    else:
        print("\n".join(format_prediction(path, prediction) for path, prediction in results))
    # A photo that got no answer (unreadable, too small or flat) fails the command.
    return 1 if any(prediction.label is None for _path, prediction in results) else 0


def _check_asked_settings(args: argparse.Namespace, config: Config, model, source: str
                          ) -> None:
    """Refuse settings given on the command line that the model contradicts (its ORB,
    tone, colour, histogram settings and k are what photos are described with)."""
    from bovw.predict.contradiction import model_contradiction, model_refusal

    difference = model_contradiction(model, config, overrides(args))
    if difference is not None:
        raise model_refusal(source, difference)


def _predict_file(predictor: Predictor, path: Path, max_file_bytes: int) -> Prediction:
    # Read as a run reads its images (read_local_file): the same reasons (a broken symbolic
    # link was "file not found" here), and a named pipe is refused, not waited on.
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if not path.is_symlink():
            return Prediction.unreadable("file not found")
        size = 0  # a broken link: read_local_file names its target
    except OSError:
        size = 0  # read_local_file says why it cannot be read
    if size > max_file_bytes:
        reason = f"file too large: {size} bytes exceeds ingest.max_file_bytes={max_file_bytes}"
        return Prediction.unreadable(reason)
    data = read_local_file(str(path))
    return Prediction.unreadable(data) if isinstance(data, str) else predictor.predict(data)


def format_prediction(path: str, prediction: Prediction) -> str:
    """The text `bovw predict` prints for one photo."""
    if prediction.reject_reason:
        return f"{path}: cannot read the photo: {prediction.reject_reason}"
    if prediction.flagged:
        return f"{path}: not answered: {prediction.flagged}" + (
            f"\n    photo: {prediction.fitted}" if prediction.fitted else "")
    best, *others = prediction.top
    lines = [f"{path}: {best.label} ({100 * best.probability:.1f}%)"
             + ("  [low confidence]" if prediction.low_confidence else "")]
    if best.info:
        details = "; ".join(part for part in (best.info.family, best.info.colour) if part)
        lines.append(f"    {best.info.name}" + (f" ({details})" if details else "")
                     + f": {best.info.description}")
    if others:
        lines.append("    next: " + ", ".join(
            f"{score.label} {100 * score.probability:.1f}%" for score in others))
    lines.extend(f"    note: {note}" for note in prediction.notes)
    if prediction.fitted:
        lines.append(f"    photo: {prediction.fitted}")
    return "\n".join(lines)


def _predict_folder(args: argparse.Namespace, environ: dict, config: Config,
                    folders: list[str]) -> int:
    from bovw.predict.batch import predict_folder

    if len(args.inputs) != 1:
        raise InputError("give either photo files or exactly one folder / s3a:// prefix "
                         f"(got {len(args.inputs)} inputs, {len(folders)} of them folders)")
    if not args.output:
        raise InputError("predicting a folder writes Parquet: pass --output FOLDER")
    if args.fruits:
        raise InputError("--fruits applies to photo files; for a folder, embed the catalogue "
                         "with bovw export --fruits")
    input_path, output_path = location(args.inputs[0]), url(args.output)
    # Every image file below the folder is predicted, whatever its folders (with
    # --labelled, a photo's folder is its label).
    check_local_input(input_path, config.ingest,
                      layout="image files at any depth below it (with --labelled, "
                             "<Class>/*.jpg)")
    spark = _Spark(config, environ, [input_path, output_path, args.model], args.verbose)
    [output_path] = resolved(spark(), output_path)
    model_bytes, source = _model_bytes(args.model, spark, config)
    _check_asked_settings(args, config, Predictor.from_bytes(model_bytes, source=source).model,
                          source)
    summary = predict_folder(spark(), config, input_path, output_path, model_bytes,
                             labelled=args.labelled, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return 0
    print(f"predicted {summary.images} images ({summary.rejected} unreadable, "
          f"{summary.not_answered} too small or flat to answer, "
          f"{summary.low_confidence} low confidence) -> {summary.output}")
    if summary.scores is not None:
        print(f"  {_accuracy_line(summary.scores)}")
    return 0


def _accuracy_line(scores) -> str:
    """The accuracy of a labelled folder (a LabelledScores), with the known-class photos
    it could not score."""
    unanswered, unknown = scores.unanswered, scores.unknown_class
    left_out = (f" ({unanswered} more of known classes unreadable or not answered, left out)"
                if unanswered else "")
    # Photos of a fruit the model was not trained on cannot be right: not scored, but said.
    others = (f"; {unknown} in folders of classes the model does not know, not scored"
              if unknown else "")
    if scores.accuracy is None:
        return ("no answered image is in a folder named after a known class" + left_out
                if unanswered else "no image is in a folder named after a known class") + others
    return (f"accuracy {100 * scores.accuracy:.2f}% on {scores.labelled} answered "
            f"images of known classes{left_out}{others}")


HANDLERS = {"predict": _predict, "export": _export}
