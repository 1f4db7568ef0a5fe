"""The [vocabulary] and [histograms] sections: how an image's descriptors become its
vector (visual words of one of two spaces, or a VLAD or Fisher encoding), and the sizes
those choices imply."""

from __future__ import annotations

from dataclasses import dataclass

from bovw.config.parsing import require

__all__ = [
    "ASSIGNMENTS", "DENSE_ENCODINGS", "ENCODINGS", "VLAD_MAX_LENGTH", "VOCABULARY_SPACES",
    "VOCABULARY_WIDTHS", "HistogramSettings", "VocabularySettings", "pyramid_cells",
]

# What a vocabulary can cluster a descriptor as, and that point's width
# (bovw.image.words.descriptor_points): its 32 byte values or its 256 bits.
VOCABULARY_WIDTHS = {"bytes": 32, "bits": 256}
VOCABULARY_SPACES = tuple(VOCABULARY_WIDTHS)


def pyramid_cells(levels: int) -> int:
    """The cells of a spatial pyramid of `levels` levels: 4^level on level `level`."""
    return sum(4**level for level in range(levels))


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
    # What KMeans clusters and words are matched in (bovw.image.words.SPACES): "bytes", a
    # descriptor's 32 byte values; "bits", its 256 bits as 0/1, where the distance to a
    # binary point is the Hamming distance ORB is made for. On fruits360-dev (README, "The
    # encoding levers"): +0.1 / +1.0 / +0.3 points at seeds 42 / 7 / 1 for a run 1.35x as
    # long (KMeans and the assignment on 256 numbers per descriptor, not 32): bytes stays.
    space: str = "bytes"
    # histograms.encoding = "fisher" only: EM rounds of its Bernoulli mixture
    # (bovw.pipeline.mixture), started from the KMeans words of the bits space, and the gain
    # in mean log-likelihood per sampled descriptor (nats) below which EM stops early.
    mixture_max_iter: int = 10
    mixture_tol: float = 1e-3

    def validate(self) -> None:
        """Raise ConfigError naming the first setting of this section that is out of range."""
        require(self.k >= 2, f"vocabulary.k must be >= 2 (got {self.k})")
        require(self.sample_size >= 1,
                 f"vocabulary.sample_size must be >= 1 (got {self.sample_size})")
        require(self.sample_per_image >= 0,
                 f"vocabulary.sample_per_image must be >= 0 (got {self.sample_per_image})")
        require(self.max_iter >= 1, "vocabulary.max_iter must be >= 1")
        require(
            self.init_mode in ("k-means||", "random"),
            "vocabulary.init_mode must be 'k-means||' or 'random'",
        )
        require(self.init_steps >= 1, "vocabulary.init_steps must be >= 1")
        require(self.tol >= 0, "vocabulary.tol must be >= 0")
        require(self.solver in ("auto", "row", "block"),
                 "vocabulary.solver must be 'auto', 'row' or 'block'")
        require(self.partitions >= 1, "vocabulary.partitions must be >= 1")
        require(self.space in VOCABULARY_SPACES,
                f"vocabulary.space must be one of {', '.join(VOCABULARY_SPACES)} "
                f"(got {self.space!r})")
        require(self.mixture_max_iter >= 1,
                f"vocabulary.mixture_max_iter must be >= 1 (got {self.mixture_max_iter})")
        require(self.mixture_tol >= 0,
                f"vocabulary.mixture_tol must be >= 0 (got {self.mixture_tol})")


ASSIGNMENTS = ("hard", "soft")
# What the histograms stage makes of an image's descriptors (bovw.image.vlad for "vlad",
# bovw.image.fisher for "fisher").
ENCODINGS = ("words", "vlad", "fisher")
# Encodings whose vector holds k blocks of the descriptor's width per cell, not k counts.
DENSE_ENCODINGS = ("vlad", "fisher")
# A VLAD or Fisher vector is dense: k * descriptor width * pyramid cells values per image. Past this
# many, the PCA's input would not fit a 2-core machine's memory (k=16 in the bits space at
# 2 pyramid levels: 20,480).
VLAD_MAX_LENGTH = 65_536


@dataclass(frozen=True)
class HistogramSettings:
    """Weighting applied to the raw per-image word counts."""

    tfidf: bool = True
    l2: bool = True
    # 1: one histogram over the whole image; 2: plus one per 2x2 cell; 3: plus 4x4 cells.
    # 3 with power 0.5 is the most accurate word setting measured on fruits360-dev (96.50%
    # Test accuracy over seeds 42, 7 and 1, against 95.73% for 2 levels and power 1; see
    # the README's "3 pyramid levels and power 0.5 are the default"), for 1.27x the wall
    # time of a dev-set run (60.3 s against 47.4 s).
    pyramid_levels: int = 3
    # Applied after TF-IDF, before L2: 0.5 is the square-root (Hellinger) normalisation; at
    # 3 levels it is worth 0.63 point (95.87% -> 96.50%, same seeds).
    power: float = 0.5
    # "hard": each descriptor counts 1 for its nearest word. "soft": it is shared among its
    # soft_neighbours nearest words, word i getting exp(-(d_i^2 - d_1^2) / (2 sigma^2)),
    # the shares summing to 1 (bovw.image.words.soft_words); sigma^2 is the mean squared
    # distance of the vocabulary sample to its nearest word (KMeans training cost / sample
    # size, recorded by the vocabulary stage).
    assignment: str = "hard"
    soft_neighbours: int = 3
    # "words": the word histogram above. "vlad": per pyramid cell and word, the sum of the
    # residuals (descriptor - word, in the vocabulary's space) of the descriptors nearest
    # that word, each value to the signed `power`, each word's block L2-normalised
    # (bovw.image.vlad); then L2 over the whole vector. A few dozen words, not thousands:
    # each adds a block of 32 (bytes) or 256 (bits) values per cell. "fisher": per pyramid
    # cell and component of a Bernoulli mixture of the 256 bits (fitted by EM from the
    # KMeans words, vocabulary.space = "bits"), the gradient of the cell's log-likelihood
    # with respect to the component's bit probabilities, Fisher-information normalised,
    # each value to the signed `power` (bovw.image.fisher); then L2 over the whole vector.
    encoding: str = "words"

    def validate(self) -> None:
        """Raise ConfigError naming the first setting of this section that is out of range."""
        require(1 <= self.pyramid_levels <= 4, "histograms.pyramid_levels must be in 1..4")
        require(0.0 < self.power <= 1.0, "histograms.power must be in (0, 1]")
        require(self.assignment in ASSIGNMENTS,
                f"histograms.assignment must be one of {', '.join(ASSIGNMENTS)} "
                f"(got {self.assignment!r})")
        require(2 <= self.soft_neighbours <= 16,
                f"histograms.soft_neighbours must be in 2..16 (got {self.soft_neighbours})")
        require(self.encoding in ENCODINGS,
                f"histograms.encoding must be one of {', '.join(ENCODINGS)} "
                f"(got {self.encoding!r})")
        if self.encoding in DENSE_ENCODINGS:
            block = {"vlad": "a VLAD block holds residuals",
                     "fisher": "a Fisher block holds gradients"}[self.encoding]
            require(not self.tfidf, f"histograms.encoding = \"{self.encoding}\" needs "
                    f"histograms.tfidf = false: IDF weighs how often a word occurs, and {block}")
            require(self.assignment == "hard", f"histograms.encoding = \"{self.encoding}\" "
                    "takes histograms.assignment = \"hard\" only")

    @property
    def neighbours(self) -> int:
        """How many words each descriptor is shared among: 1 for hard assignment."""
        return self.soft_neighbours if self.assignment == "soft" else 1
