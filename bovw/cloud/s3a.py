"""The Spark / Hadoop S3A settings that let Spark read and write s3a://.

Credentials (bovw.cloud.credentials) are turned into `spark.hadoop.fs.s3a.*` properties for
hadoop-aws, and the hadoop-aws / AWS SDK / spark-hadoop-cloud jars matching the Hadoop
bundled with pyspark are chosen at run time. The properties hold secrets: they go to
bovw.spark.session.build_session, which keeps them off the JVM's command line, never to a
log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bovw.config import S3Settings
from bovw.errors import CloudError

if TYPE_CHECKING:
    from bovw.cloud.credentials import ResolvedCredentials

__all__ = ["AWS_SDK_BUNDLE_FOR_HADOOP", "BundledVersions", "S3AJars", "SparkS3ASetup",
           "bundled_versions", "committer_properties", "hadoop_s3a_properties",
           "normalise_s3_url", "pyspark_jars_dir", "refuse_credentials_in_url", "s3a_jars",
           "spark_s3a_setup", "uses_s3"]

log = logging.getLogger(__name__)

# Credential sources whose keys rotate on their own. Hadoop's default provider chain ends
# with the instance/container role and refreshes it, where a snapshot would expire mid-run;
# leaving the chain alone also keeps a platform's own providers (EMR runtime roles).
_INSTANCE_METHODS = ("iam-role", "container-role")

S3A = "org.apache.hadoop.fs.s3a"
TEMPORARY_PROVIDER = f"{S3A}.TemporaryAWSCredentialsProvider"
SIMPLE_PROVIDER = f"{S3A}.SimpleAWSCredentialsProvider"
S3A_COMMITTER_FACTORY = f"{S3A}.commit.S3ACommitterFactory"
# Both classes live in org.apache.spark:spark-hadoop-cloud, not in pyspark's own jars.
PATH_OUTPUT_COMMIT_PROTOCOL = "org.apache.spark.internal.io.cloud.PathOutputCommitProtocol"
BINDING_PARQUET_COMMITTER = "org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter"

# AWS SDK v2 bundle each hadoop-aws release was built and tested with
# (<aws-java-sdk-v2.version> in that release's hadoop-project POM). hadoop-aws also pulls
# it transitively; naming it pins the tested version.
AWS_SDK_BUNDLE_FOR_HADOOP = {
    "3.4.0": "2.23.19",
    "3.4.1": "2.24.6",
    "3.4.2": "2.29.52",
    "3.4.3": "2.35.4",
    "3.5.0": "2.35.4",
}


def hadoop_s3a_properties(
    credentials: ResolvedCredentials | None, settings: S3Settings
) -> dict[str, str]:
    """The Spark properties that let hadoop-aws's S3A connector read and write `s3a://`.

    `credentials` None leaves Hadoop's own provider chain in charge (environment, instance
    role). Instance and container role credentials are not copied either: that chain fetches
    and refreshes them itself. Otherwise the keys are passed with
    TemporaryAWSCredentialsProvider (session
    credentials) or SimpleAWSCredentialsProvider (long-term keys). Keys are full Spark
    property names (`spark.hadoop.fs.s3a.*`, `spark.sql.*`). The result holds secrets:
    give it to bovw.spark.session.build_session (which keeps them off the JVM's command line),
    never to a log.
    """
    hadoop: dict[str, str] = {}
    if credentials is not None and credentials.method not in _INSTANCE_METHODS:
        hadoop["fs.s3a.aws.credentials.provider"] = (
            TEMPORARY_PROVIDER if credentials.token else SIMPLE_PROVIDER
        )
        hadoop["fs.s3a.access.key"] = credentials.access_key
        hadoop["fs.s3a.secret.key"] = credentials.secret_key
        if credentials.token:
            hadoop["fs.s3a.session.token"] = credentials.token
    region = settings.region or (credentials.region if credentials else None)
    if region:
        # Without a region S3A probes the bucket for it, which needs extra permissions.
        hadoop["fs.s3a.endpoint.region"] = region
    if settings.endpoint:
        hadoop["fs.s3a.endpoint"] = settings.endpoint
        if settings.endpoint.startswith("http://"):
            hadoop["fs.s3a.connection.ssl.enabled"] = "false"
    hadoop["fs.s3a.path.style.access"] = "true" if settings.path_style_access else "false"
    properties = {f"spark.hadoop.{key}": value for key, value in hadoop.items()}
    properties.update(committer_properties(settings.committer))
    return properties


def committer_properties(committer: str) -> dict[str, str]:
    """Spark properties selecting an S3A committer (Hadoop's committers.md, Spark's
    cloud-integration guide); "none" returns {} and leaves the platform default."""
    if committer == "none":
        return {}
    properties = {
        "spark.hadoop.fs.s3a.committer.name": committer,
        "spark.hadoop.mapreduce.outputcommitter.factory.scheme.s3a": S3A_COMMITTER_FACTORY,
        "spark.sql.sources.commitProtocolClass": PATH_OUTPUT_COMMIT_PROTOCOL,
        "spark.sql.parquet.output.committer.class": BINDING_PARQUET_COMMITTER,
    }
    if committer == "magic":
        properties["spark.hadoop.fs.s3a.committer.magic.enabled"] = "true"
    return properties


@dataclass(frozen=True)
class SparkS3ASetup:
    """Everything a SparkSession needs for s3a://.

    `spark_conf`: properties for bovw.spark.session.build_session (`extra`), credentials
    included: it sets the secret ones on the live Hadoop configuration, never on the
    command line of the JVM it starts. (Under spark-submit the JVM has started already:
    the jars go on its command line, see the README's EC2 runbook.)
    """

    spark_conf: Mapping[str, str] = field(repr=False)


def spark_s3a_setup(
    settings: S3Settings,
    credentials: ResolvedCredentials | None,
    pyspark_jars: str | Path | None = None,
) -> SparkS3ASetup:
    """hadoop_s3a_properties() and s3a_jars() combined for a session builder.

    `pyspark_jars` defaults to the installed pyspark's jars folder.
    """
    jars = s3a_jars(pyspark_jars if pyspark_jars is not None else pyspark_jars_dir(), settings)
    return SparkS3ASetup(
        spark_conf={**hadoop_s3a_properties(credentials, settings), **jars.spark_conf()},
    )


def refuse_credentials_in_url(url: str) -> None:
    """Raise CloudError, without repeating them, when `url` carries credentials
    (scheme://KEY:SECRET@bucket/...).

    Old Hadoop releases took S3 keys that way. bovw writes its input and output paths
    into run.json, the report and its logs, and Spark prints paths in its errors: such a
    URL would save the secret everywhere.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return
    # An AWS secret key often holds '/', which ends the authority early: "KEY:SEC/RET@b/x".
    # A bucket name never holds ':' or '@', and another host ("namenode:8020") no '@'.
    s3 = scheme.lower() in ("s3", "s3a", "s3n")
    user_info = re.match(r"[^/]*@([^/]*)", rest)
    if s3:
        user_info = re.match(r"[^/@]*:[^@]*@([^/]*)", rest) or user_info
    if user_info or (s3 and re.search(r"[:@]", rest.partition("/")[0])):
        host = user_info.group(1) if user_info else "..."
        where = f"{scheme}://***@{host}"
        raise CloudError(
            f"the path {where}/... holds credentials before its '@'; bovw would save them "
            "with the path in run.json, reports and logs; fix: remove them and give an AWS "
            "profile (--profile, s3.profile) or run with an instance role")


def normalise_s3_url(url: str) -> str:
    """`s3://` and `s3n://` URLs as `s3a://` (the scheme hadoop-aws serves); others unchanged.
    Raises CloudError for a URL with credentials in it (refuse_credentials_in_url)."""
    refuse_credentials_in_url(url)
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("s3", "s3n"):
        normalised = f"s3a://{rest}"
        log.info("using %s for %s: Spark reads S3 through the s3a connector", normalised, url)
        return normalised
    return url


def uses_s3(*urls: str | None) -> bool:
    """True when any of `urls` is on S3 (s3, s3a or s3n scheme)."""
    return any(
        url is not None and url.partition("://")[0].lower() in ("s3", "s3a", "s3n")
        for url in urls
    )


@dataclass(frozen=True)
class S3AJars:
    """What Spark needs on its classpath for s3a://: local `jars` or Maven `packages`."""

    hadoop_version: str
    jars: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()

    def spark_conf(self) -> dict[str, str]:
        """Builder properties (effective only when the builder launches the JVM)."""
        conf = {}
        if self.jars:
            conf["spark.jars"] = ",".join(self.jars)
        if self.packages:
            conf["spark.jars.packages"] = ",".join(self.packages)
        return conf



@dataclass(frozen=True)
class BundledVersions:
    """Versions of the Hadoop client and Spark shipped in pyspark's jars folder."""

    hadoop: str
    spark: str
    scala: str


def pyspark_jars_dir() -> Path:
    """The jars folder of the installed pyspark."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def bundled_versions(pyspark_jars: str | Path) -> BundledVersions:
    """Read the Hadoop, Spark and Scala versions from jar names in pyspark's jars folder."""
    folder = Path(pyspark_jars)
    names = _jar_names(folder)
    hadoop = _versions(names, r"hadoop-client-api-(\d+\.\d+\.\d+)\.jar")
    spark = [m.groups() for m in map(re.compile(r"spark-core_(\d+\.\d+)-(.+)\.jar").fullmatch,
                                     names) if m]
    if len(hadoop) != 1:
        raise CloudError(
            f"expected one hadoop-client-api-X.Y.Z.jar in {folder}, found {len(hadoop)}; "
            "fix: point at pyspark's own jars folder (pyspark/jars)"
        )
    if len(spark) != 1:
        raise CloudError(
            f"expected one spark-core_S-V.jar in {folder}, found {len(spark)}; "
            "fix: point at pyspark's own jars folder (pyspark/jars)"
        )
    (scala, spark_version), = spark
    return BundledVersions(hadoop=hadoop[0], spark=spark_version, scala=scala)


def _jar_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise CloudError(f"jars folder not found: {folder}")
    return sorted(path.name for path in folder.iterdir() if path.suffix == ".jar")


def _versions(names: Sequence[str], pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return [match.group(1) for match in map(regex.fullmatch, names) if match]


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def s3a_jars(pyspark_jars: str | Path, settings: S3Settings) -> S3AJars:
    """Choose the jars that give pyspark's bundled Hadoop its S3A connector.

    With `settings.jars_dir`: that folder's hadoop-aws (same version as the bundled Hadoop,
    else CloudError), AWS SDK v2 bundle and, unless the committer is "none",
    spark-hadoop-cloud for the bundled Spark. Otherwise, with `settings.packages`: the Maven
    coordinates of the same. Otherwise nothing: the platform provides them (EMR).
    """
    versions = bundled_versions(pyspark_jars)
    hadoop = versions.hadoop
    needs_cloud = settings.committer != "none"
    if settings.jars_dir:
        return _jars_from_folder(Path(settings.jars_dir), versions, needs_cloud)
    if not settings.packages:
        log.info("no s3a jars added (s3.packages=false, no s3.jars_dir): the classpath must "
                 "already hold hadoop-aws %s", hadoop)
        return S3AJars(hadoop_version=hadoop)
    packages = [f"org.apache.hadoop:hadoop-aws:{hadoop}"]
    bundle = AWS_SDK_BUNDLE_FOR_HADOOP.get(hadoop)
    if bundle:
        packages.append(f"software.amazon.awssdk:bundle:{bundle}")
    else:
        log.info("no known AWS SDK bundle for Hadoop %s: using the one hadoop-aws depends on",
                 hadoop)
    if needs_cloud:
        packages.append(f"org.apache.spark:spark-hadoop-cloud_{versions.scala}:{versions.spark}")
    return S3AJars(hadoop_version=hadoop, packages=tuple(packages))


def _jars_from_folder(folder: Path, versions: BundledVersions, needs_cloud: bool) -> S3AJars:
    hadoop = versions.hadoop
    names = _jar_names(folder)
    expected_bundle = AWS_SDK_BUNDLE_FOR_HADOOP.get(hadoop, "2.x")
    wanted = f"hadoop-aws-{hadoop}.jar and bundle-{expected_bundle}.jar"
    aws = _versions(names, r"hadoop-aws-(\d+\.\d+\.\d+)\.jar")
    if not aws:
        raise CloudError(
            f"no hadoop-aws jar in s3.jars_dir {folder}; fix: put {wanted} there "
            f"(pyspark bundles Hadoop {hadoop}), or unset s3.jars_dir to use s3.packages"
        )
    if aws != [hadoop]:
        found = ", ".join(f"hadoop-aws-{v}.jar" for v in aws)
        raise CloudError(
            f"{found} in s3.jars_dir {folder} does not match the Hadoop {hadoop} bundled with "
            f"pyspark; fix: replace it with hadoop-aws-{hadoop}.jar"
        )
    bundles = _versions(names, r"bundle-(2\.\d+\.\d+)\.jar")
    if len(bundles) != 1:
        raise CloudError(
            f"expected one AWS SDK v2 bundle-2.x.y.jar in s3.jars_dir {folder}, found "
            f"{len(bundles)}; fix: keep only bundle-{expected_bundle}.jar there"
        )
    tested = AWS_SDK_BUNDLE_FOR_HADOOP.get(hadoop)
    if tested and _version_tuple(bundles[0]) < _version_tuple(tested):
        raise CloudError(
            f"bundle-{bundles[0]}.jar in s3.jars_dir {folder} is older than the AWS SDK "
            f"{tested} hadoop-aws {hadoop} needs; fix: replace it with bundle-{tested}.jar"
        )
    if tested and bundles[0] != tested:
        log.warning("AWS SDK bundle %s differs from %s, the one hadoop-aws %s was tested with",
                    bundles[0], tested, hadoop)
    chosen = [f"hadoop-aws-{hadoop}.jar", f"bundle-{bundles[0]}.jar"]
    if needs_cloud:
        cloud = f"spark-hadoop-cloud_{versions.scala}-{versions.spark}.jar"
        if cloud not in names:
            present = [n for n in names if n.startswith("spark-hadoop-cloud")]
            found = f" (found {', '.join(present)})" if present else ""
            raise CloudError(
                f"no {cloud} in s3.jars_dir {folder}{found}; the S3A committers need it: "
                f"fix: add {cloud}, or set s3.committer = \"none\""
            )
        chosen.append(cloud)
    return S3AJars(hadoop_version=hadoop, jars=tuple(str(folder / name) for name in chosen))
