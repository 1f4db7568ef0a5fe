"""Spark plumbing: the session, files on any Hadoop filesystem, and bovw's output folders.

    session.py        the SparkSession from the configuration, after a JDK check
    storage.py        files and folders on local disks, HDFS or s3a through the JVM
    whole_files.py    files that appear whole: replaced, renewed or created exclusively
    filesystems.py    which filesystem a path is on (local, object store, other)
    storage_errors.py their failures as one line naming the cause and the fix
    outputs.py        bovw's output folders: recognised by a marker, locked, opened
    swap.py           an output replaced by its complete successor, built beside it
    leases.py         the lock of an output, held by a heartbeat
    arrow_vectors.py  Spark ML vectors as Arrow carries them through mapInArrow
    jvm.py            the one adapter for private py4j/pyspark internals
    console.py        what the driver bovw starts prints: log level, JVM start-up noise
    progress.py       a live line per stage from Spark's status tracker
    workers.py        Python workers started ahead of a pipeline's first Python job

Importing bovw.spark (or its session module) does not import pyspark: the CLI builds its
parser without Spark.
"""

from bovw.spark.session import build_session

__all__ = ["build_session"]
