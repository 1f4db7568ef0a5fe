"""Histograms stage: each descriptor to its nearest visual word (and spatial-pyramid cell),
then groupBy + pivot into exactly one histogram per image, which the reduction stage weights
(bovw.pipeline.feature_rows), followed by the tone and colour blocks defined here. With
histograms.encoding = "vlad" or "fisher", the same path carries each image's VLAD or Fisher
vector (bovw.image.encodings) instead of its word counts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.ml.feature import IDF, IDFModel, VectorAssembler
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
from bovw.config import ColourSettings, ToneSettings
from bovw.errors import ColourError, ToneError
from bovw.image.encodings import DenseEncoding
from bovw.image.orb import unpack, unpack_positions
from bovw.image.words import scoring_matrix, word_counts
from bovw.pipeline.descriptors import accepted
from bovw.spark.arrow_vectors import sparse_vectors

__all__ = ["AppendedBlock", "appended_blocks", "check_blocks", "colour_block", "fit_idf",
           "tone_block", "word_histograms"]

_IMAGE_COLUMNS = (PATH, LABEL, SPLIT, N_KEYPOINTS)
# Per-image blocks of the descriptors table carried over to the histograms
# (bovw.image.tone, bovw.image.colour); descriptors of an older bovw may lack one.
_BLOCK_COLUMNS = (TONE, COLOUR)


def _level_shape(centers: np.ndarray, pyramid_levels: int, dense: DenseEncoding | None
                 ) -> tuple[np.ndarray, int]:
    """(the cells of each pyramid level, 4^level; the entries of one cell: len(centers)
    words, or with a `dense` encoding len(centers) x the centers' width values)."""
    k, width = centers.shape
    return 4 ** np.arange(pyramid_levels), k if dense is None else k * width


def _level_count_batches(centers: np.ndarray, pyramid_levels: int, kept: list[str],
                         neighbours: int, variance: float, dense: DenseEncoding | None = None):
    """mapInArrow function: each image row becomes one row per pyramid level: its `kept`
    columns, the level, and that level's part of the image's encoding as a sparse vector,
    its cells one after the other (row by row): their word counts
    (bovw.image.words.word_counts with `neighbours` and `variance`), len(centers) entries
    a cell; or, with a `dense` encoding, their VLAD or Fisher blocks, len(centers) x the
    centers' width entries a cell."""
    k = len(centers)
    cells_per_level, cell_size = _level_shape(centers, pyramid_levels, dense)
    level_ends = np.cumsum(cells_per_level)
    # Each cell's place inside its level: how many cells of its level come before it.
    first_of_level = level_ends - cells_per_level
    place_in_level = np.arange(level_ends[-1]) - np.repeat(first_of_level, cells_per_level)
    scoring = scoring_matrix(centers)

    def encode(descriptors: np.ndarray, positions: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(each level's end among the entries, their indices, their values)."""
        if dense is not None:
            blocks = dense.cells(descriptors, centers, positions, pyramid_levels, scoring)
            cells, columns = np.nonzero(blocks)
            values = blocks[cells, columns]
        else:
            bins, counts = word_counts(descriptors, centers, positions, pyramid_levels,
                                       scoring, neighbours, variance)
            # Bins come sorted, cell by cell: each level's words are one slice of them.
            cells, columns, values = bins // k, bins % k, counts.astype(np.float64)
        return (np.searchsorted(cells, level_ends),
                place_in_level[cells] * cell_size + columns, values)

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
            rows = np.repeat(np.arange(batch.num_rows), pyramid_levels)
            sizes = np.tile(cells_per_level * cell_size, batch.num_rows).astype(np.int32)
            vectors = sparse_vectors(sizes, np.concatenate(offsets),
                                     np.concatenate(indices + [np.zeros(0, np.int32)]),
                                     np.concatenate(values + [np.zeros(0)]))
            yield pa.RecordBatch.from_arrays(
                [batch.column(name).take(pa.array(rows)) for name in kept]
                + [pa.array(np.tile(np.arange(pyramid_levels, dtype=np.int32),
                                    batch.num_rows)),
                   vectors],
                names=[*kept, "level", "words"],
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
    (image, pyramid level) with that level's word counts as a sparse vector, its cells one
    after the other. groupBy(image).pivot(level) then lines an image's levels up into one
    row, and VectorAssembler joins them into one sparse histogram. Pivoting on the level
    rather than on the word keeps the shuffle at a few rows per image (not one per
    non-empty bin: ~600 here) and the pivot a few columns wide at any k; rather than on
    the cell, 3 rows an image at 3 levels instead of 21, each carrying the image's columns.
    """
    cells_per_level, cell_size = _level_shape(centers, pyramid_levels, dense)
    images = accepted(descriptors)
    keys = [*_IMAGE_COLUMNS, *(block for block in _BLOCK_COLUMNS if block in images.columns)]
    schema = StructType([images.schema[name] for name in keys]
                        + [StructField("level", IntegerType()), StructField("words", VectorUDT())])
    per_level = images.select(*keys, DESCRIPTORS, POSITIONS).mapInArrow(
        _level_count_batches(centers, pyramid_levels, keys, neighbours, variance, dense),
        schema)
    levels = range(pyramid_levels)
    lined_up = per_level.groupBy(*keys).pivot("level", list(levels)).agg(F.first("words"))
    # The size metadata spares VectorAssembler a Spark job (a first() over this whole
    # plan) to find out how long each level's vector is.
    columns = [F.col(f"`{level}`").alias(
        f"level_{level}", metadata={"ml_attr": {"num_attrs": int(cells * cell_size)}})
        for level, cells in zip(levels, cells_per_level, strict=True)]
    assembler = VectorAssembler(inputCols=[f"level_{level}" for level in levels],
                                outputCol=HISTOGRAM)
    length = int(sum(cells * cell_size for cells in cells_per_level))
    # VectorAssembler names every slot in the output's metadata: 750 KB of schema JSON at
    # k = 1000 and 3 levels, which Spark copied through every plan and Parquet footer that
    # holds the histograms and pyspark fetched and parsed again with every schema. Only
    # the length is kept.
    return assembler.transform(lined_up.select(*keys, *columns)).select(
        *keys, F.col(HISTOGRAM).alias(HISTOGRAM, metadata={"ml_attr": {"num_attrs": length}}))


def fit_idf(histograms: DataFrame) -> IDFModel:
    """Spark ML IDF fitted on the Training histograms only."""
    idf = IDF(inputCol=HISTOGRAM, outputCol=WEIGHTED)
    return idf.fit(histograms.filter(F.col(SPLIT) == TRAIN))


@dataclass(frozen=True)
class AppendedBlock:
    """A per-image histogram (an array column of the descriptors, summing to 1) that joins
    the weighted word histogram as weight * sqrt(histogram) (bovw.pipeline.feature_rows).
    `error` is raised, naming `setting` and `what` the block holds, when the rows cannot
    supply it.

    The square root of a histogram summing to 1 has unit L2 norm, like the weighted word
    histogram it joins: neither drowns the other in the PCA (fruits360-dev, dense ORB
    k=1000: 98.2% with the raw colour block, 99.97% with its square root, same weight)."""

    column: str
    dimension: int
    weight: float
    error: type[Exception]
    setting: str
    what: str


def tone_block(settings: ToneSettings) -> AppendedBlock:
    """The tone block (bovw.image.tone) as the reduction stage joins it."""
    return AppendedBlock(TONE, settings.dimension, settings.weight, ToneError, "tone.enabled",
                         "grey-level histograms")


def colour_block(settings: ColourSettings) -> AppendedBlock:
    """The colour block (bovw.image.colour) as the reduction stage joins it."""
    return AppendedBlock(COLOUR, settings.dimension, settings.weight, ColourError,
                         "colour.enabled", "colour histograms")


def appended_blocks(tone: ToneSettings, colour: ColourSettings) -> list[AppendedBlock]:
    """The enabled blocks that follow the word histogram, in order: tone, then colour."""
    return ([tone_block(tone)] if tone.enabled else []) + (
        [colour_block(colour)] if colour.enabled else [])


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
