"""The classifier stage checks its own fit: a model that did not train is an error, never a
metrics.json (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.linalg import Vectors

from bovw.errors import TrainingError
from bovw.pipeline.classifier import classify_and_evaluate
from bovw.pipeline.layout import RunLayout


def _projected(spark, noise_axes: int):
    """36 Training and 9 Test rows of 3 classes: 3 informative axes, then `noise_axes` whose
    values differ only by rounding (1e-17), like the PCA axes beyond the Training data's
    rank that bovw kept before issue 12."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(45):
        label = i % 3
        signal = np.eye(3)[label] + 0.3 * rng.standard_normal(3)
        noise = 1e-17 * rng.standard_normal(noise_axes)
        rows.append((f"{i:02d}.jpg", "abc"[label], "Training" if i < 36 else "Test",
                     Vectors.dense(np.concatenate([signal, noise]).tolist())))
    return spark.createDataFrame(rows, ["path", "label", "split", "pca_features"])


def test_a_classifier_that_did_not_train_fails_the_stage(spark, test_config, tmp_path):
    # Spark divides each feature by its std and weights the L2 penalty by 1/std^2 when
    # unstandardised: on the noise axes the penalty is ~1e28 times too steep, LBFGS's line
    # search fails at once and the model keeps its starting point (one class for all).
    layout = RunLayout(str(tmp_path / "run"))
    with pytest.raises(TrainingError) as error:
        classify_and_evaluate(spark, test_config, _projected(spark, noise_axes=4), 45, layout,
                              ("path", "label", "split"))
    message = str(error.value)
    assert message.startswith("the classifier did not train: LBFGS stopped after 2 of 200 "
                              "iterations with the loss at 1.099 (start 1.099)")
    assert "Training accuracy 33.3% (chance 33.3%)" in message and "\n" not in message
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert not (tmp_path / "run" / "features").exists()


def test_metrics_are_those_of_the_written_predictions(spark, test_config, tmp_path):
    # One Spark job gives the Training outcomes (the fit check) and the Test ones (the
    # metrics): metrics.json counts exactly the Test rows of the features written.
    import json

    layout = RunLayout(str(tmp_path / "run"))
    metrics = classify_and_evaluate(spark, test_config, _projected(spark, noise_axes=0), 45,
                                    layout, ("path", "label", "split"))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics
    written = spark.read.parquet(layout.features).toPandas()
    test = written[written["split"] == "Test"]
    classes = metrics["classes"]
    assert classes == ["a", "b", "c"] and metrics["test_images"] == len(test) == 9
    confusion = [[int(((test["label"] == true) & (test["prediction"] == guess)).sum())
                  for guess in classes] for true in classes]
    assert metrics["confusion_matrix"] == confusion
    assert metrics["accuracy"] == pytest.approx((test["label"] == test["prediction"]).mean())
    training = written[written["split"] == "Training"]
    check = metrics["classifier"]
    assert check["training_images"] == len(training) == 36
    assert check["training_accuracy"] == pytest.approx(
        (training["label"] == training["prediction"]).mean(), abs=1e-6)
