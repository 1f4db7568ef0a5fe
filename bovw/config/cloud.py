"""The [s3] and [emr] sections: how bovw reaches S3 and what `bovw emr submit` creates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bovw.config.parsing import require
from bovw.config.redaction import masked_repr, redactor_for

__all__ = ["EMR_FAILURE_ACTIONS", "S3_COMMITTERS", "EmrSettings", "S3Settings"]


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
        """Raise ConfigError naming the first setting of this section that is out of range."""
        require(
            self.committer in S3_COMMITTERS,
            f"s3.committer must be one of {', '.join(S3_COMMITTERS)} (got {self.committer!r})",
        )
        require(self.profile is None or bool(self.profile.strip()), "s3.profile must not be blank")
        require(
            self.endpoint is None or self.endpoint.startswith(("http://", "https://")),
            f"s3.endpoint must start with http:// or https:// (got {self.endpoint!r})",
        )
        require(1 <= self.upload_concurrency <= 256, "s3.upload_concurrency must be in 1..256")
        require(
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
    # The first Amazon EMR release with Spark 4: Spark 4.0.2, Python 3.11-3.13, inside
    # the pyspark range bovw declares (pyproject.toml).
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
        """Raise ConfigError naming the first setting of this section that is out of range."""
        require(bool(self.cluster_name.strip()), "emr.cluster_name must not be empty")
        major = _emr_release_major(self.release_label)
        require(
            major is not None,
            f"emr.release_label must look like 'emr-spark-8.0.0' or 'emr-7.9.0' "
            f"(got {self.release_label!r})",
        )
        require(
            major is None or major >= 8,
            f"emr.release_label {self.release_label!r} ships Spark 3; bovw needs Spark 4: "
            "use emr-spark-8.0.0 or later",
        )
        require(len(self.applications) > 0, "emr.applications must list at least Spark")
        require(self.core_instance_count >= 0, "emr.core_instance_count must be >= 0")
        for name in ("log_uri", "bootstrap_script", "job_script"):
            value = getattr(self, name)
            require(
                value is None or value.startswith("s3://"),
                f"emr.{name} must be an s3:// URI (got {value!r})",
            )
        require(
            self.deploy_mode in ("cluster", "client"),
            "emr.deploy_mode must be 'cluster' or 'client'",
        )
        require(
            self.action_on_failure in EMR_FAILURE_ACTIONS,
            "emr.action_on_failure must be one of " + ", ".join(EMR_FAILURE_ACTIONS),
        )
        for key in self.spark_conf:
            require(
                key.startswith("spark."), f"emr.spark_conf key {key!r} must start with 'spark.'"
            )
        redactor_for(self.spark_conf, "emr.spark_conf")

    def __repr__(self) -> str:
        return masked_repr(self, "spark_conf", self.spark_conf)


def _emr_release_major(label: str) -> int | None:
    match = re.fullmatch(r"emr-(?:spark-)?(\d+)\.\d+\.\d+", label)
    return int(match.group(1)) if match else None
