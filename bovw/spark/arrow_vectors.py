"""Spark ML vectors as Arrow carries them through mapInArrow, built and read with numpy.

VectorUDT is stored as a struct: type (0 sparse, 1 dense), size, indices, values; a
dense vector leaves size and indices null. The histograms and vocabulary stages emit
vectors this way, and the reduction stage reads them back without leaving numpy.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

__all__ = ["VECTOR_STRUCT", "dense_vectors", "sparse_vectors", "vectors_to_csr"]

VECTOR_STRUCT = pa.struct([("type", pa.int8()), ("size", pa.int32()),
                           ("indices", pa.list_(pa.int32())),
                           ("values", pa.list_(pa.float64()))])


def sparse_vectors(size: int | np.ndarray, offsets: np.ndarray, indices: np.ndarray,
                   values: np.ndarray) -> pa.StructArray:
    """len(offsets) - 1 sparse vectors of `size` entries (one size for all, or one per
    vector): vector i holds `indices` (int32) and `values` (float64) from offsets[i] to
    offsets[i + 1]."""
    count = len(offsets) - 1
    offsets = pa.array(np.asarray(offsets, np.int32))
    return pa.StructArray.from_arrays([
        pa.array(np.zeros(count, np.int8)),
        pa.array(np.broadcast_to(np.asarray(size, np.int32), count)),
        pa.ListArray.from_arrays(offsets, pa.array(np.asarray(indices, np.int32))),
        pa.ListArray.from_arrays(offsets, pa.array(np.asarray(values, np.float64))),
    ], fields=list(VECTOR_STRUCT))


def dense_vectors(rows: np.ndarray) -> pa.StructArray:
    """One dense vector per row of an (n, d) array."""
    count, width = rows.shape
    return pa.StructArray.from_arrays([
        pa.array(np.ones(count, np.int8)),
        pa.nulls(count, pa.int32()),
        pa.nulls(count, pa.list_(pa.int32())),
        pa.ListArray.from_arrays(pa.array(np.arange(0, count * width + 1, width, dtype=np.int32)),
                                 pa.array(np.ascontiguousarray(rows, np.float64).ravel())),
    ], fields=list(VECTOR_STRUCT))


def vectors_to_csr(vectors: pa.StructArray, dimension: int) -> sparse.csr_matrix:
    """Vectors as Arrow delivers them -> a CSR matrix with one row per vector, of
    `dimension` columns. Raises ValueError when a vector has another length: scipy does
    not check the indices it is given, and one beyond the matrix corrupts memory later
    (a Python worker died of it, "free(): invalid next size", instead of an error)."""
    kinds = vectors.field("type").to_numpy(zero_copy_only=False)
    values = vectors.field("values")
    _check_lengths(vectors, kinds, dimension)
    if len(kinds) and (kinds == 0).all():
        offsets = values.offsets.to_numpy()
        return sparse.csr_matrix(
            (values.flatten().to_numpy(), vectors.field("indices").flatten().to_numpy(),
             offsets - offsets[0]), shape=(len(kinds), dimension))
    if len(kinds) and (kinds == 1).all() and not values.null_count:
        # Dense vectors (array_to_vector's): their values lie end to end, `dimension` each.
        flat = values.flatten().to_numpy()
        if len(flat) == len(kinds) * dimension:
            return sparse.csr_matrix(flat.reshape(len(kinds), dimension))
    rows = []
    for vector in vectors.to_pylist():
        row = np.zeros(dimension)
        if vector["type"] == 0:
            row[vector["indices"]] = vector["values"]
        else:
            row[:] = vector["values"]
        rows.append(row)
    return sparse.csr_matrix(np.array(rows).reshape(-1, dimension))


def _check_lengths(vectors: pa.StructArray, kinds: np.ndarray, dimension: int) -> None:
    """Raise ValueError unless every vector that is not null has `dimension` entries."""
    valid = vectors.is_valid().to_numpy(zero_copy_only=False)
    sparse_sizes = vectors.field("size").to_numpy(zero_copy_only=False)[valid & (kinds == 0)]
    dense_sizes = pc.list_value_length(vectors.field("values")).to_numpy(
        zero_copy_only=False)[valid & (kinds == 1)]
    wrong = np.concatenate([sparse_sizes, dense_sizes]).astype(np.int64)
    wrong = wrong[wrong != dimension]
    if len(wrong):
        raise ValueError(f"a vector of {wrong[0]} entries where every vector should have "
                         f"{dimension}")
