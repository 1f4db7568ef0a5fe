"""The one adapter for py4j and pyspark internals: every use of a private attribute of
pyspark (`_jvm`, `_jsc`, `_jdf`, `_jconf`, `_jsparkSession`, `_origin`, `_py2java`, a
model's `_set`) is here, so a Spark upgrade that moves one breaks this module only.

Java exceptions that reach Python through py4j are read as (class, message) pairs: the
boundaries that call the JVM (bovw.spark.session when Spark starts, bovw.spark.storage for
every file it reads or writes) turn them into one-line user errors from their class names;
only a few Hadoop failures without a class of their own are told apart by their message.
Importing this module does not import Spark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from pyspark.ml.feature import PCAModel
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["FileSplits", "JavaCause", "driver_jvm", "file_splits", "hadoop_configuration",
           "input_file_names", "input_files", "java_causes", "java_pca_model"]


@dataclass(frozen=True)
class JavaCause:
    """One exception of a Java cause chain: its class name and the first line of its message."""

    class_name: str
    message: str

    @property
    def simple_name(self) -> str:
        """The class name without its package."""
        return self.class_name.rsplit(".", 1)[-1]

    def __str__(self) -> str:
        return f"{self.simple_name}: {self.message}" if self.message else self.simple_name


def java_causes(error: BaseException) -> list[JavaCause]:
    """The Java exception behind `error` and its causes, outermost first; [] when `error`
    does not come from the JVM.

    `error` is a py4j Py4JJavaError (`java_exception`) or one of pyspark's captured
    exceptions (`_origin`).
    """
    throwable: Any = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    causes: list[JavaCause] = []
    while throwable is not None and len(causes) < 20:
        message = throwable.getMessage()
        causes.append(JavaCause(
            class_name=str(throwable.getClass().getName()),
            message=str(message).strip().splitlines()[0] if message and str(message).strip()
            else "",
        ))
        throwable = throwable.getCause()
    return causes


@dataclass(frozen=True)
class FileSplits:
    """The session's settings for splitting a file scan into tasks (Spark SQL's
    spark.sql.files.maxPartitionBytes, openCostInBytes and minPartitionNum, the last one
    defaulting to the leaf-node parallelism), as Spark itself resolves them."""

    max_partition_bytes: int
    open_cost_bytes: int
    min_partitions: int


def file_splits(spark: SparkSession) -> FileSplits:
    """The session's FileSplits, read from its SQL configuration (so a value given as
    "128m" or left to Spark's default counts as Spark counts it)."""
    conf = spark._jconf
    minimum = conf.filesMinPartitionNum()
    return FileSplits(
        int(conf.filesMaxPartitionBytes()), int(conf.filesOpenCostInBytes()),
        int(minimum.get()) if minimum.isDefined()
        else int(spark._jsparkSession.leafNodeDefaultParallelism()))


def driver_jvm(spark: SparkSession) -> Any:
    """The py4j view of the driver's JVM, e.g. driver_jvm(spark).org.apache.hadoop.fs.Path."""
    return spark.sparkContext._jvm


def hadoop_configuration(spark: SparkSession) -> Any:
    """The live Hadoop Configuration (a py4j object) that every read and write of the
    session copies."""
    return spark.sparkContext._jsc.hadoopConfiguration()


def input_files(frame: DataFrame) -> Any:
    """The files a file-based DataFrame reads, as Spark's driver lists them: a py4j array of
    URIs, of which only the length crosses to Python until it is iterated."""
    return frame._jdf.inputFiles()


def input_file_names(spark: SparkSession, listed: Any) -> list[str]:
    """The URIs of `input_files` as Python strings, brought over in one string (a py4j
    call per element would cost seconds for a large listing)."""
    if not len(listed):
        return []
    # URIs quote every character that is not allowed in them, line breaks included.
    wrapped = spark.sparkContext._jvm.scala.collection.immutable.ArraySeq.unsafeWrapArray(listed)
    return str(wrapped.mkString("\n")).split("\n")


def java_pca_model(spark: SparkSession, pc: np.ndarray, explained: np.ndarray,
                   input_col: str, output_col: str) -> PCAModel:
    """A Spark ML PCAModel (`input_col` -> `output_col`) holding the (d, k) principal axes
    `pc` and the (k,) explained variance `explained`, built in the JVM as Spark's own
    PCA.fit would build it (Spark has no public constructor for a given matrix)."""
    from pyspark.ml.common import _py2java
    from pyspark.ml.feature import PCAModel
    from pyspark.ml.linalg import DenseMatrix, DenseVector

    context = spark.sparkContext
    dimension, k = pc.shape
    # The arrays as they are (DenseMatrix and DenseVector keep float64 arrays either way):
    # made from a list of 2.1 million Python floats (21,032 x 100 axes), the matrix took
    # 0.23 s of the driver between the last Krylov pass and the projection, from the array
    # 0.03 s.
    java_pc = _py2java(context, DenseMatrix(dimension, k, pc.ravel(order="F")))
    java_variance = _py2java(context, DenseVector(explained))
    uid = context._jvm.org.apache.spark.ml.util.Identifiable.randomUID("pca")
    java_model = context._jvm.org.apache.spark.ml.feature.PCAModel(uid, java_pc, java_variance)
    model = PCAModel(java_model)
    model._set(k=k, inputCol=input_col, outputCol=output_col)
    model._transfer_params_to_java()
    return model
