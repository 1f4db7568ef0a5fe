"""The settings of each stage of a run, and of prediction and the CNN comparison: frozen
dataclasses, one per TOML section, each checking its own values (`validate`).

bovw.config assembles them into the whole Config; bovw.config.cloud holds the [s3] and
[emr] sections, bovw.config.blocks [tone] and [colour], bovw.config.cnn [cnn],
bovw.config.encoding [vocabulary] and [histograms].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bovw.config.parsing import require
from bovw.config.redaction import masked_repr, redactor_for

__all__ = [
    "DESCRIPTOR_SCHEME", "FIT_POLICIES", "GARBAGE_COLLECTORS", "LOG_LEVELS", "ClassifierSettings",
    "IngestSettings", "OrbSettings", "PcaSettings", "PredictSettings", "SparkSettings",
]

# log4j's levels, quietest last: spark.log_level takes one of them.
LOG_LEVELS = ("ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF")
# spark.gc: HotSpot's throughput collector, or whichever the JVM picks itself.
GARBAGE_COLLECTORS = ("parallel", "jvm")


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
    # Spark splits a scan into min(this, input bytes / cores) pieces. Every task of the
    # descriptors stage sets up a Python UDF runner and writes its own Parquet file, and
    # every later read pays per file: on fruits360-dev (15.5k files, 2 cores) 64 MB gives
    # the descriptors job 8 tasks instead of 50 at 8 MB and a run 2 s faster, with the
    # same metrics.
    max_partition_bytes: int = 64 * 1024 * 1024
    # What Spark logs on the console (log4j level): ERROR keeps a run's console to bovw's
    # own lines; WARN is Spark's own default; `--verbose` shows at least WARN.
    log_level: str = "ERROR"
    # A folder for a JVM class-data archive (AppCDS) of Spark's classes, used when bovw
    # starts a local-mode JVM itself: the first run writes it (~240 MB, about 20 s of CPU
    # after the command has returned, as the JVM exits), later runs start their session
    # with ~2.5 s less CPU. Empty: off.
    class_archive_dir: str = "~/.cache/bovw"
    # How much hotter than the JVM's default a method must run before the optimising JIT
    # (C2) compiles it, in a local-mode JVM bovw starts. On 2 cores C2 took 32 s of CPU
    # in a 58 s run on fruits360-dev, mostly compiling Spark's own code that runs a few
    # thousand times; at 20 it took 11 s and the run 50 s (a whole `bovw run` there: 65 s
    # of CPU instead of 79). The hot loops still get compiled, and Spark ML's and its BLAS's
    # at the JVM's own thresholds (bovw.spark.session.HOT_PACKAGES). 1: the JVM's defaults.
    jit_threshold_scale: int = 20
    # The garbage collector of a local-mode JVM bovw starts: "parallel" (throughput: no
    # concurrent marking threads or G1 write barriers competing with the work for 2
    # cores; whole `bovw run`s on fruits360-dev 1-4% shorter over 3 pairs, same results) or
    # "jvm" (the JVM's own choice, G1 on most machines). A -XX:+Use...GC flag in
    # spark.driver.extraJavaOptions wins over either.
    gc: str = "parallel"
    conf: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ConfigError naming the first setting of this section that is out of range."""
        require(bool(self.master), "spark.master must not be empty")
        require(self.shuffle_partitions >= 1, "spark.shuffle_partitions must be >= 1")
        require(self.arrow_batch_size >= 1, "spark.arrow_batch_size must be >= 1")
        require(self.log_level in LOG_LEVELS,
                f"spark.log_level must be one of {', '.join(LOG_LEVELS)} "
                f"(got {self.log_level!r})")
        require(self.open_cost_bytes >= 0, "spark.open_cost_bytes must be >= 0")
        require(self.max_partition_bytes >= 1024, "spark.max_partition_bytes must be >= 1024")
        # HotSpot refuses thresholds beyond 2^31 - 1: the backedge one is 40,000 x scale.
        require(1 <= self.jit_threshold_scale <= 1000,
                 "spark.jit_threshold_scale must be between 1 and 1000")
        require(self.gc in GARBAGE_COLLECTORS,
                f"spark.gc must be one of {', '.join(GARBAGE_COLLECTORS)} (got {self.gc!r})")
        for key in self.conf:
            require(key.startswith("spark."), f"spark.conf key {key!r} must start with 'spark.'")
        redactor_for(self.conf)

    def __repr__(self) -> str:
        return masked_repr(self, "conf", self.conf)


@dataclass(frozen=True)
class IngestSettings:
    """Which files are images, and how a dataset without Training/Test folders is split."""

    extensions: tuple[str, ...] = ("jpg", "jpeg", "png")
    test_fraction: float = 0.25
    # Larger files are rejected from their listed size, before their bytes are read.
    max_file_bytes: int = 64 * 1024 * 1024

    def validate(self) -> None:
        """Raise ConfigError naming the first setting of this section that is out of range."""
        require(len(self.extensions) > 0, "ingest.extensions must list at least one extension")
        require(
            0.0 < self.test_fraction < 1.0,
            "ingest.test_fraction must be between 0 and 1 (exclusive)",
        )
        require(self.max_file_bytes >= 1, "ingest.max_file_bytes must be >= 1")


DESCRIPTOR_SCHEME = 2
# The orb settings only one sampling reads: dense keypoints are all of octave 0 and given
# to ORB.compute, so ORB never builds its pyramid or runs FAST for them; detection has no
# grid. tests/test_features.py checks that the other sampling's descriptors stay the same.
ORB_SAMPLING_ONLY = {
    "detect": ("nfeatures", "scale_factor", "n_levels", "fast_threshold"),
    "dense": ("dense_step", "dense_scales"),
}


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

    def unused(self) -> tuple[str, ...]:
        """The settings of this section that `sampling` does not read (ORB_SAMPLING_ONLY):
        whatever their values, the descriptors are the same."""
        return tuple(name for sampling, names in ORB_SAMPLING_ONLY.items()
                     if sampling != self.sampling for name in names)

    def validate(self) -> None:
        """Raise ConfigError naming the first setting of this section that is out of range."""
        require(self.sampling in ("detect", "dense"), "orb.sampling must be 'detect' or 'dense'")
        require(self.nfeatures >= 1, "orb.nfeatures must be >= 1")
        require(self.edge_threshold >= 0, "orb.edge_threshold must be >= 0")
        require(self.patch_size >= 2, "orb.patch_size must be >= 2")
        require(self.scale_factor > 1.0, "orb.scale_factor must be > 1.0")
        require(self.n_levels >= 1, "orb.n_levels must be >= 1")
        require(0 <= self.fast_threshold <= 255, "orb.fast_threshold must be in 0..255")
        require(0.1 <= self.upscale <= 8.0, "orb.upscale must be between 0.1 and 8")
        require(self.dense_step >= 1, "orb.dense_step must be >= 1")
        require(
            len(self.dense_scales) > 0 and all(s >= 0.5 for s in self.dense_scales),
            "orb.dense_scales must be a non-empty list of numbers >= 0.5",
        )
        require(len(set(self.dense_scales)) == len(self.dense_scales),
                 f"orb.dense_scales lists a scale twice: {list(self.dense_scales)}")
        require(self.descriptor_scheme == DESCRIPTOR_SCHEME,
                 f"orb.descriptor_scheme {self.descriptor_scheme} is not computed by this bovw "
                 f"(only {DESCRIPTOR_SCHEME}); leave the key out")
        require(self.max_side >= 16, "orb.max_side must be >= 16")
        require(self.max_pixels >= 256, "orb.max_pixels must be >= 256")


@dataclass(frozen=True)
class PcaSettings:
    """Spark ML PCA; components is capped by the histogram length at run time."""

    components: int = 100

    def validate(self) -> None:
        """Raise ConfigError naming the first setting of this section that is out of range."""
        require(self.components >= 1, "pca.components must be >= 1")


@dataclass(frozen=True)
class ClassifierSettings:
    """Spark ML multinomial logistic regression."""

    reg_param: float = 1e-6
    elastic_net: float = 0.0
    max_iter: int = 200
    # Each LBFGS iteration is a Spark job (30-40 ms on fruits360-dev). There, with the
    # defaults, 1e-3 stops after 32 iterations instead of 46-47 (1e-4), at 0.05 point more
    # Test accuracy at each of three seeds (96.67/96.72/96.26% against 96.62/96.67/96.21%,
    # seeds 42/7/1); with the colour block after 25 instead of 34, at 99.95% both (README).
    # Earlier, 1e-4 against 1e-6: 53 against 92 iterations, 91.5% and 91.4%.
    tol: float = 1e-3
    # Spark scales every feature to unit variance before fitting by default. On PCA axes
    # that inflates the many low-variance ones, which carry mostly noise: on fruits360-dev
    # (dense ORB, k=1000, 2-level pyramid, PCA 100) 85.3% with it against 88-90% without.
    standardize: bool = False
    # Each LBFGS iteration is one Spark job over the training rows, and each task of it
    # has a fixed cost of a few tens of milliseconds. Partitions hold this many rows, so a
    # small dataset is one task per iteration (15.5k images: 34 ms per iteration against
    # 71 ms on 4 partitions) while a large one still spreads over the cores. On 2 cores
    # the 155k images of fruits360-dev x10 fitted in 7.0 s on 2 partitions, 7.2 s on 4
    # and 9.2 to 12.6 s on 8 (20,000 rows each), 53 iterations every time. With many more
    # cores than 2, fewer rows per partition can pay.
    rows_per_partition: int = 80000

    def validate(self) -> None:
        """Raise ConfigError naming the first setting of this section that is out of range."""
        require(self.reg_param >= 0, "classifier.reg_param must be >= 0")
        require(self.rows_per_partition >= 1, "classifier.rows_per_partition must be >= 1")
        require(0.0 <= self.elastic_net <= 1.0, "classifier.elastic_net must be in [0, 1]")
        require(self.max_iter >= 1, "classifier.max_iter must be >= 1")
        require(self.tol >= 0, "classifier.tol must be >= 0")


FIT_POLICIES = ("trim", "crop", "pad", "none")


@dataclass(frozen=True)
class PredictSettings:
    """How `bovw predict` and `bovw.Predictor` treat one photo.

    A photo whose size differs from the training images' (a phone photo) is first made
    the training shape by `fit` (see bovw.image.framing.fit_to_training_size): "trim" crops to
    the fruit on a light background and pads it square with white, like a Fruits-360 photo
    (without such a background it does what "crop" does); "crop" keeps the largest centred
    region of the training aspect ratio; "pad" adds white borders; "none" describes it as
    it is. Then it is resized to the training size. A photo is not answered (no class,
    the reason instead) when its shorter side is below `min_side` px, or when fewer than
    `min_textured_patches` patches of the image described show any detail
    (bovw.image.orb.textured_patches): too small, flat or blurred to describe. A prediction
    is flagged low-confidence when the photo gives fewer than `min_keypoints` keypoints or
    the top probability is below `min_probability`. `fruits` is the fruit catalogue
    (TOML) embedded at export; None means the one bovw ships (bovw/predict/fruits.toml).
    """

    top: int = 3
    min_keypoints: int = 10
    min_probability: float = 0.5
    # A 5x5 photo enlarged to the training size was answered "Mango (94.1%)" (issue 16).
    min_side: int = 32
    # Of 289 patches on a 100x100 photo: every fruits360-dev photo has 35 or more, one
    # shrunk to 16 px and enlarged back at most 11 (bovw.image.orb.DETAIL_LEVEL).
    min_textured_patches: int = 20
    fit: str = "trim"
    fruits: str | None = None

    def validate(self) -> None:
        """Raise ConfigError naming the first setting of this section that is out of range."""
        require(self.top >= 1, "predict.top must be >= 1")
        require(self.min_keypoints >= 0, "predict.min_keypoints must be >= 0")
        require(self.min_side >= 0, "predict.min_side must be >= 0")
        require(self.min_textured_patches >= 0, "predict.min_textured_patches must be >= 0")
        require(0.0 <= self.min_probability <= 1.0, "predict.min_probability must be in [0, 1]")
        require(self.fit in FIT_POLICIES,
                 f"predict.fit must be one of {', '.join(FIT_POLICIES)} (got {self.fit!r})")
