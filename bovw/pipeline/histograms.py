"""Histograms stage: each descriptor to its nearest visual word (and spatial-pyramid cell),
then groupBy + pivot into exactly one histogram per image, then TF-IDF, power and L2
weighting. With histograms.encoding = "vlad" or "fisher", the same path carries each
image's VLAD or Fisher vector (bovw.image.encodings) instead of its word counts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.ml.feature import IDF, IDFModel, Normalizer, VectorAssembler
from pyspark.ml.functions import array_to_vector
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StructField, StructType

from bovw.columns import (
    COLOUR,
    DESCRIPTORS,
    HISTOGRAM,
    LABEL,
    N_KEYPOINTS,
    PATH,
    POSITIONS,
    SPLIT,
    TONE,
    TRAIN,
    WEIGHTED,
)
from bovw.config import ColourSettings, HistogramSettings, ToneSettings
from bovw.errors import ColourError, ToneError
from bovw.image.encodings import DenseEncoding
from bovw.image.orb import unpack, unpack_positions
from bovw.image.words import histogram_length, scoring_matrix, word_counts
from bovw.pipeline.descriptors import accepted
from bovw.spark.arrow_vectors import powered_vectors, sparse_vectors

__all__ = ["AppendedBlock", "append_blocks", "append_colour", "append_tone", "appended_blocks",
           "appended_dimension", "check_blocks", "colour_block", "fit_idf", "tone_block", "weight",
           "word_histograms"]

_IMAGE_COLUMNS = (PATH, LABEL, SPLIT, N_KEYPOINTS)
# Per-image blocks of the descriptors table carried over to the histograms
# (bovw.image.tone, bovw.image.colour); descriptors of an older bovw may lack one.
_BLOCK_COLUMNS = (TONE, COLOUR)


def _cell_count_batches(centers: np.ndarray, pyramid_levels: int, kept: list[str],
                        neighbours: int, variance: float, dense: DenseEncoding | None = None):
    """mapInArrow function: each image row becomes one row per pyramid cell: its `kept`
    columns, the cell, and that cell's part of the image's encoding as a sparse vector:
    its word counts (bovw.image.words.word_counts with `neighbours` and `variance`), of
    len(centers) entries; or, with a `dense` encoding, its VLAD or Fisher blocks, of
    len(centers) x the centers' width entries."""
    k, width = centers.shape
    n_cells = histogram_length(k, pyramid_levels) // k
    cell_starts = np.arange(n_cells + 1) * k
    size = k if dense is None else k * width
    scoring = scoring_matrix(centers)

    def encode(descriptors: np.ndarray, positions: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(each cell's end among the entries, their indices, their values)."""
        if dense is not None:
            blocks = dense.cells(descriptors, centers, positions, pyramid_levels, scoring)
            present = blocks != 0.0
            return (np.cumsum(present.sum(axis=1)), np.nonzero(present)[1], blocks[present])
        bins, counts = word_counts(descriptors, centers, positions, pyramid_levels, scoring,
                                   neighbours, variance)
        # Bins come sorted, cell by cell: each cell's words are one slice of them.
        return (np.searchsorted(bins, cell_starts[1:]), bins % k, counts.astype(np.float64))

    def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            indices, values, offsets = [], [], [np.zeros(1, np.int32)]
            end = 0
            for blob, position_blob in zip(batch.column(DESCRIPTORS).to_pylist(),
                                           batch.column(POSITIONS).to_pylist(), strict=True):
                ends, image_indices, image_values = encode(unpack(blob),
                                                           unpack_positions(position_blob))
                offsets.append((end + ends).astype(np.int32))
                indices.append(image_indices.astype(np.int32))
                values.append(image_values)
                end += len(image_indices)
            rows = np.repeat(np.arange(batch.num_rows), n_cells)
            vectors = sparse_vectors(size, np.concatenate(offsets),
                                     np.concatenate(indices + [np.zeros(0, np.int32)]),
                                     np.concatenate(values + [np.zeros(0)]))
            yield pa.RecordBatch.from_arrays(
                [batch.column(name).take(pa.array(rows)) for name in kept]
                + [pa.array(np.tile(np.arange(n_cells, dtype=np.int32), batch.num_rows)),
                   vectors],
                names=[*kept, "cell", "words"],
            )

    return count


def word_histograms(descriptors: DataFrame, centers: np.ndarray, pyramid_levels: int = 1,
                    neighbours: int = 1, variance: float = 0.0,
                    dense: DenseEncoding | None = None) -> DataFrame:
    """One raw-count histogram per accepted image, or with a `dense` encoding one VLAD or
    Fisher vector (bovw.image.encodings: vlad_length(k, d, pyramid_levels) values, in the
    same cell order; for Fisher, `centers` are the mixture's (k, 256) means).

    `descriptors` has DESCRIPTOR_SCHEMA rows; `centers` is the (k, d) vocabulary (d = 32,
    or 256 in the bits space, bovw.image.words.SPACES). Each
    descriptor counts 1 for its nearest word (neighbours = 1), or is shared among its
    `neighbours` nearest words (soft assignment with `variance`,
    bovw.image.words.soft_words). Returns (path, label, split, n_keypoints, [tone,]
    [colour,] histogram: vector of histogram_length(k, pyramid_levels) bins); tone and
    colour are carried over when the descriptors have them (bovw.image.tone,
    bovw.image.colour). An image with no keypoints gets an all-zero histogram; it
    contributes nothing to any word.

    Each descriptor goes to its nearest word inside an Arrow UDF, which emits one row per
    (image, pyramid cell) with that cell's word counts as a sparse vector. groupBy(image)
    .pivot(cell) then lines an image's cells up into one row, and VectorAssembler joins
    them into one sparse histogram. Pivoting on the cell rather than on the word keeps
    the shuffle at a few rows per image (not one per non-empty bin: ~600 here) and the
    pivot a few columns wide at any k.
    """
    k, width = centers.shape
    n_cells = histogram_length(k, pyramid_levels) // k
    size = k if dense is None else k * width
    images = accepted(descriptors)
    keys = [*_IMAGE_COLUMNS, *(block for block in _BLOCK_COLUMNS if block in images.columns)]
    schema = StructType([images.schema[name] for name in keys]
                        + [StructField("cell", IntegerType()), StructField("words", VectorUDT())])
    per_cell = images.select(*keys, DESCRIPTORS, POSITIONS).mapInArrow(
        _cell_count_batches(centers, pyramid_levels, keys, neighbours, variance, dense),
        schema)
    lined_up = per_cell.groupBy(*keys).pivot("cell", list(range(n_cells))).agg(F.first("words"))
    # The size metadata spares VectorAssembler a Spark job (a first() over this whole
    # plan) to find out how long each cell's vector is.
    cells = [F.col(f"`{cell}`").alias(f"cell_{cell}", metadata={"ml_attr": {"num_attrs": size}})
             for cell in range(n_cells)]
    assembler = VectorAssembler(inputCols=[f"cell_{cell}" for cell in range(n_cells)],
                                outputCol=HISTOGRAM)
    return assembler.transform(lined_up.select(*keys, *cells)).select(*keys, HISTOGRAM)


def fit_idf(histograms: DataFrame) -> IDFModel:
    """Spark ML IDF fitted on the Training histograms only."""
    idf = IDF(inputCol=HISTOGRAM, outputCol=WEIGHTED)
    return idf.fit(histograms.filter(F.col(SPLIT) == TRAIN))


def weight(histograms: DataFrame, settings: HistogramSettings, idf: IDFModel | None
           ) -> DataFrame:
    """`histograms` with `weighted` in place of `histogram`: the histogram times IDF (when
    enabled), to `settings.power` (a word histogram only: a VLAD or Fisher vector has its
    power already), then L2-normalised (when enabled). A sparse histogram stays sparse.
    These are Spark ML's IDF and Normalizer on a DataFrame; a run weights its rows inside
    the reduction stage's Python passes instead (bovw.pipeline.feature_rows), to the same
    bits (tests/test_weighting.py), and so does the Predictor.

    The raw histogram is left out: the power's Arrow pass would otherwise carry it to
    Python and back beside the weighted one (at 3 pyramid levels on fruits360-dev, 2.8 s
    against 1.6 s a pass over the images), and nothing downstream reads it.
    """
    if settings.tfidf and idf is None:
        raise ValueError("TF-IDF is enabled but no IDF model was given")
    weighted = (idf.transform(histograms) if settings.tfidf
                else histograms.withColumn(WEIGHTED, F.col(HISTOGRAM))).drop(HISTOGRAM)
    # A VLAD or Fisher vector had its (signed) power inside its blocks (bovw.image.encodings).
    if settings.power != 1.0 and settings.encoding == "words":
        weighted = weighted.mapInArrow(_power_batches(settings.power), weighted.schema)
    if settings.l2:
        weighted = Normalizer(inputCol=WEIGHTED, outputCol="_l2", p=2.0).transform(weighted)
        weighted = weighted.drop(WEIGHTED).withColumnRenamed("_l2", WEIGHTED)
    return weighted


def _power_batches(power: float):
    """mapInArrow function: the `weighted` vectors to `power`, every other column as it
    is. Through Spark's arrays a sparse histogram became a dense vector of every bin,
    which made the PCA and the classifier read 5,000 values per image instead of ~600
    (on fruits360-dev: reduction and classifier 4 s slower, 16 s at 3 pyramid levels)."""

    def raise_to(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            column = batch.schema.get_field_index(WEIGHTED)
            yield batch.set_column(column, WEIGHTED,
                                   powered_vectors(batch.column(column), power))

    return raise_to


@dataclass(frozen=True)
class AppendedBlock:
    """A per-image histogram (an array column of the descriptors, summing to 1) that joins
    the weighted word histogram as weight * sqrt(histogram). `error` is raised, naming
    `setting` and `what` the block holds, when the rows cannot supply it."""

    column: str
    dimension: int
    weight: float
    error: type[Exception]
    setting: str
    what: str


def tone_block(settings: ToneSettings) -> AppendedBlock:
    """The tone block (bovw.image.tone) as append_blocks joins it."""
    return AppendedBlock(TONE, settings.dimension, settings.weight, ToneError, "tone.enabled",
                         "grey-level histograms")


def colour_block(settings: ColourSettings) -> AppendedBlock:
    """The colour block (bovw.image.colour) as append_blocks joins it."""
    return AppendedBlock(COLOUR, settings.dimension, settings.weight, ColourError,
                         "colour.enabled", "colour histograms")


def appended_blocks(tone: ToneSettings, colour: ColourSettings) -> list[AppendedBlock]:
    """The enabled blocks that follow the word histogram, in order: tone, then colour."""
    return ([tone_block(tone)] if tone.enabled else []) + (
        [colour_block(colour)] if colour.enabled else [])


def appended_dimension(tone: ToneSettings, colour: ColourSettings) -> int:
    """How many values the tone and colour blocks add to each feature vector."""
    return sum(block.dimension for block in appended_blocks(tone, colour))


def append_colour(weighted: DataFrame, settings: ColourSettings,
                  column: str = WEIGHTED) -> DataFrame:
    """`column` (a vector) followed by weight * sqrt(`colour`), when colour is enabled
    (append_blocks with the colour block alone); unchanged without `colour.enabled`."""
    return append_blocks(weighted, [colour_block(settings)] if settings.enabled else [], column)


def append_tone(weighted: DataFrame, settings: ToneSettings, column: str = WEIGHTED
                ) -> DataFrame:
    """`column` (a vector) followed by weight * sqrt(`tone`), when the tone block is enabled
    (append_blocks with the tone block alone); unchanged without `tone.enabled`."""
    return append_blocks(weighted, [tone_block(settings)] if settings.enabled else [], column)


def append_blocks(weighted: DataFrame, blocks: Sequence[AppendedBlock],
                  column: str = WEIGHTED, lengths_from: DataFrame | None = None) -> DataFrame:
    """`column` (a vector) followed by weight * sqrt(block) of each block in order; a row
    whose block is empty (its image could not be read for it) gets zeros, keeping every
    vector the same length. Without blocks the frame is returned unchanged. Raises the
    block's error when the rows carry no such column or blocks of another length.

    The lengths are checked by one Spark job over `lengths_from` (default: `weighted`),
    the same rows before their weighting: Spark cannot prune columns through an Arrow
    pass, so on `weighted` after the power the check computed the power for every image
    (2 s of each stage that weights, at 3 pyramid levels on fruits360-dev).
    """
    if not blocks:
        return weighted
    for block in blocks:
        if block.column not in weighted.columns:
            raise _missing(block)
    check_blocks(weighted if lengths_from is None else lengths_from, blocks)
    parts = []
    for block in blocks:
        values = F.when(F.size(block.column) == block.dimension, F.col(block.column)).otherwise(
            F.array_repeat(F.lit(0.0).cast("float"), block.dimension))
        # The square root of a histogram summing to 1 has unit L2 norm, like the weighted
        # word histogram it joins: neither block drowns the other in the PCA (fruits360-dev,
        # dense ORB k=1000: 98.2% with the raw colour block, 99.97% with its square root,
        # same weight).
        parts.append(array_to_vector(F.transform(values, _weighted_sqrt(block.weight))).alias(
            f"_{block.column}_block", metadata={"ml_attr": {"num_attrs": block.dimension}}))
    # VectorAssembler keeps a sparse word histogram sparse (through arrays it became a
    # dense vector of every bin: the PCA and the projection then read 5,000 values per
    # image instead of ~600, and took three times as long on fruits360-dev).
    blocked = weighted.select("*", *parts)
    assembler = VectorAssembler(inputCols=[column, *[f"_{block.column}_block" for block in blocks]],
                                outputCol=f"_{column}_with_blocks")
    return assembler.transform(blocked).select(
        *[F.col(f"_{column}_with_blocks").alias(column) if name == column else F.col(name)
          for name in weighted.columns])


def check_blocks(rows: DataFrame, blocks: Sequence[AppendedBlock]) -> None:
    """Raise the block's error when `rows` carry no column for one of `blocks` or blocks of
    another length than its settings make (rows without one are fine: they get zeros).
    One Spark job checks every block's length; none runs without blocks."""
    if not blocks:
        return
    for block in blocks:
        if block.column not in rows.columns:
            raise _missing(block)
    longest = rows.agg(*[F.max(F.size(block.column)).alias(block.column)
                         for block in blocks]).first()
    for block in blocks:
        if longest[block.column] not in (None, -1, 0, block.dimension):
            raise block.error(
                f"the descriptors carry {block.what} of {longest[block.column]} bins but the "
                f"{block.column} settings make {block.dimension}; extract descriptors again "
                f"with these {block.column} settings")


def _missing(block: AppendedBlock) -> Exception:
    return block.error(
        f"{block.setting} is true but these descriptors carry no {block.what}; extract "
        f"descriptors again with {block.setting}=true (do not reuse --descriptors-from)")


def _weighted_sqrt(weight: float):
    # A one-argument function: F.transform passes the element index too to a function
    # that takes two (a default argument would count).
    return lambda value: F.sqrt(value.cast("double")) * F.lit(weight)
