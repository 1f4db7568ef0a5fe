"""The whole pipeline reading s3a:// input and writing s3a:// output on a local S3 server.

The run is the `bovw run` command in a child process, with an AWS profile, as users run
it against S3; only the endpoint points at the moto server. Spark needs the hadoop-aws
jar matching its bundled Hadoop and the AWS SDK bundle: from the folder named by
BOVW_S3A_JARS, or from Maven Central when it is reachable; otherwise the test is skipped.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from bovw.cloud.s3 import upload
from bovw.image.synthetic import generate_dataset
from tests.cloud_fixtures import TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY
from tests.cluster_fixtures import run_bovw

pytestmark = pytest.mark.subprocess_runs

JARS_VARIABLE = "BOVW_S3A_JARS"
SKIP_REASON = (
    "hadoop-aws jars not available: set BOVW_S3A_JARS to a folder with "
    "hadoop-aws-<hadoop version>.jar and the AWS SDK bundle (no Maven access here)"
)
PROFILE = "bovw-moto"


def maven_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(("repo1.maven.org", 443), timeout=timeout):
            return True
    except OSError:
        return False


def s3a_jar_overrides() -> list[str]:
    """`--set` flags that give Spark the s3a jars; skips the test when there are none."""
    folder = os.environ.get(JARS_VARIABLE)
    if folder:
        flags = ["--set", f"s3.jars_dir={folder}"]
        if not any(name.startswith("spark-hadoop-cloud") for name in os.listdir(folder)):
            # Without spark-hadoop-cloud there is no S3A committer binding: Spark's own.
            flags += ["--set", "s3.committer=none"]
        return flags
    if maven_reachable():
        return ["--set", "s3.packages=true"]
    pytest.skip(SKIP_REASON)


def test_whole_pipeline_from_s3a_to_s3a(aws_files, moto_endpoint, s3, bucket, tmp_path):
    jar_flags = s3a_jar_overrides()
    aws_files.write(
        config=f"[profile {PROFILE}]\nregion = {TEST_REGION}\n",
        credentials=(f"[{PROFILE}]\naws_access_key_id = {TEST_ACCESS_KEY}\n"
                     f"aws_secret_access_key = {TEST_SECRET_KEY}\n"),
    )
    images = tmp_path / "images"
    generate_dataset(images, classes=3, train_per_class=8, test_per_class=3, seed=5)
    report = upload(images, f"s3://{bucket}/in/", s3, progress=False)
    assert not report.failed

    log = tmp_path / "s3a-run.log"
    completed = run_bovw([
        "run", "--input", f"s3a://{bucket}/in/", "--output", f"s3a://{bucket}/out/",
        "--profile", PROFILE, "--k", "8", "--pca-components", "5",
        "--set", f"s3.endpoint={moto_endpoint}", "--set", "s3.path_style_access=true",
        "--set", "spark.master=local[2]", "--set", "spark.shuffle_partitions=4",
        "--set", "spark.driver_memory=1g", "--set", "spark.conf.spark.ui.enabled=false",
        *jar_flags,
    ], log)
    printed = Path(log).read_text(errors="replace")
    assert completed.returncode == 0, printed[-4000:]
    assert TEST_SECRET_KEY not in printed

    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="out/")["Contents"]}
    assert {"out/metrics.json", "out/summary.json", "out/_stages/classifier.json"} <= keys
    assert any(key.startswith("out/histograms/") and key.endswith(".parquet") for key in keys)
    metrics = json.loads(s3.get_object(Bucket=bucket, Key="out/metrics.json")["Body"].read())
    assert metrics["test_images"] == 9
    assert metrics["classes"] == ["Apple Red 1", "Banana", "Orange"]
    for key in ("out/summary.json", "out/run.json"):
        saved = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        assert TEST_SECRET_KEY not in saved and TEST_ACCESS_KEY not in saved
