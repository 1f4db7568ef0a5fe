"""Shared fixtures: one local SparkSession for the whole test session."""

from __future__ import annotations

import os

import pytest

from bovw.config import load_config

# Two cores, tiny data: few partitions keep per-task overhead low.
TEST_SPARK = {
    "spark.master": "local[2]",
    "spark.shuffle_partitions": 4,
    "spark.driver_memory": "2g",
    # Short jobs on tiny data: most of the optimising JIT's work would never pay back.
    "spark.jit_threshold_scale": 20,
    # No class archive: the first session would write ~240 MB under ~/.cache as it exits.
    "spark.class_archive_dir": "",
    "spark.conf.spark.ui.enabled": "false",
    "spark.conf.spark.driver.host": "127.0.0.1",
    "spark.conf.spark.driver.bindAddress": "127.0.0.1",
    "spark.conf.spark.sql.adaptive.coalescePartitions.enabled": "true",
}


@pytest.fixture(scope="session")
def test_config():
    """The defaults with test-sized Spark settings and a small vocabulary."""
    return load_config(None, {**TEST_SPARK, "vocabulary.k": 20, "pca.components": 10,
                              "vocabulary.partitions": 2})


@pytest.fixture(scope="session")
def spark(test_config):
    from bovw.spark.session import build_session

    session = build_session(test_config, java_home=os.environ.get("JAVA_HOME"))
    yield session
    session.stop()


@pytest.fixture
def opencv_decodes(monkeypatch):
    """How many times bovw.image.decode handed bytes to OpenCV (a list, one 1 a call)."""
    from bovw.image import decode

    calls = []
    real = decode.cv2.imdecode

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(decode.cv2, "imdecode", counted)
    return calls


# The S3/STS/EMR API server and AWS profile fixtures, shared by the cloud tests.
from tests.cloud_fixtures import (  # noqa: E402,F401
    aws_files,
    bucket,
    moto_endpoint,
    s3,
    s3_settings,
    test_session,
)

# A Spark standalone cluster (Master + 2 Workers on 127.0.0.1) for the multi-master tests.
from tests.cluster_fixtures import standalone_cluster  # noqa: E402,F401
