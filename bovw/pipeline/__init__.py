"""The stages of a run, each persisted with a completion marker (bovw.pipeline.run):

    ingest + descriptors -> vocabulary -> histograms -> reduction (IDF, PCA) -> classifier

    inputs.py       checks on a local input folder that need no Spark (run before it starts)
    ingest.py       the images of a dataset folder with their label and split
    descriptors.py  ORB on every image in an Arrow UDF; counts and keypoint statistics
    vocabulary.py   Spark ML KMeans on a seeded sample of Training descriptors
    histograms.py   one (spatial-pyramid) word histogram per image; TF-IDF, power, L2; colour
    reduction.py    PCA on the Training rows (exact or randomized)
    covariance.py   the PCA's covariance products: a Spark job each, from files in local mode
    classifier.py   multinomial logistic regression; its check of its own fit; evaluation
    metrics.py      accuracy, F1 and the confusion matrix from (label, prediction) counts
    provenance.py   what made a descriptors output, and whether a run may reuse it
    layout.py       where each output of a run folder lives; stage markers
    run.py          run_pipeline: every stage in order, resumable

run_pipeline and RunResult are imported on first use, so that `bovw.pipeline.inputs`
stays free of Spark.
"""

__all__ = ["RunResult", "run_pipeline"]


def __getattr__(name: str):
    if name in __all__:
        from bovw.pipeline import run

        return getattr(run, name)
    raise AttributeError(f"module 'bovw.pipeline' has no attribute {name!r}")
