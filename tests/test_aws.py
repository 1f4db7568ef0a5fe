"""Credentials, S3A properties, jar selection and secret handling (bovw.cloud.credentials,
bovw.cloud.s3a)."""

from __future__ import annotations

import logging
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from bovw.cloud.credentials import (
    ResolvedCredentials,
    credentials_from_session,
    resolve_credentials,
)
from bovw.cloud.s3a import (
    AWS_SDK_BUNDLE_FOR_HADOOP,
    S3AJars,
    bundled_versions,
    hadoop_s3a_properties,
    normalise_s3_url,
    pyspark_jars_dir,
    s3a_jars,
    spark_s3a_setup,
    uses_s3,
)
from bovw.config import ConfigError, S3Settings, load_config
from bovw.config.redaction import Redactor
from bovw.errors import CloudError

TEST_ACCESS_KEY = "testing-access-key"
TEST_SECRET_KEY = "testing-secret-key"
STATIC_PROFILE = f"""
[static]
aws_access_key_id = {TEST_ACCESS_KEY}
aws_secret_access_key = {TEST_SECRET_KEY}
"""
STATIC_CONFIG = """
[profile static]
region = eu-west-1

[profile role]
role_arn = arn:aws:iam::123456789012:role/bovw-test
source_profile = static
region = us-east-1
"""

STATIC = ResolvedCredentials(
    access_key="testing-access-key", secret_key="testing-secret-key", region="eu-west-1",
    method="shared-credentials-file", profile="static",
)
TEMPORARY = ResolvedCredentials(
    access_key="testing-session-key", secret_key="testing-session-secret",
    token="testing-session-token", region="us-east-1", method="assume-role", profile="role",
)


# --- credentials ---------------------------------------------------------------------------

def test_static_profile_resolves_to_its_keys_and_region(aws_files):
    aws_files.write(config=STATIC_CONFIG, credentials=STATIC_PROFILE)

    assert resolve_credentials("static") == STATIC


def test_static_profile_verifies_against_sts(aws_files):
    aws_files.write(config=STATIC_CONFIG, credentials=STATIC_PROFILE)

    assert resolve_credentials("static", verify=True) == STATIC


def test_region_argument_overrides_the_profile_region(aws_files):
    aws_files.write(config=STATIC_CONFIG, credentials=STATIC_PROFILE)

    assert resolve_credentials("static", region="ap-south-1").region == "ap-south-1"


def test_assume_role_profile_returns_session_credentials_from_sts(aws_files):
    aws_files.write(config=STATIC_CONFIG, credentials=STATIC_PROFILE)

    resolved = resolve_credentials("role", verify=True)

    assert resolved.method == "assume-role"
    assert resolved.profile == "role"
    assert resolved.region == "us-east-1"
    assert resolved.temporary and resolved.token
    # Moto's STS minted new keys: the source profile's keys are not passed on.
    assert resolved.access_key != TEST_ACCESS_KEY
    assert resolved.secret_key != TEST_SECRET_KEY


def test_assume_role_works_with_endpoint_url_in_the_config_file(aws_files, monkeypatch,
                                                                moto_endpoint):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    aws_files.write(
        config=STATIC_CONFIG.replace("region = us-east-1",
                                     f"region = us-east-1\nendpoint_url = {moto_endpoint}"),
        credentials=STATIC_PROFILE,
    )

    resolved = resolve_credentials("role", verify=True)

    assert resolved.method == "assume-role" and resolved.temporary


def test_assume_role_profile_without_a_region(aws_files):
    aws_files.write(config=STATIC_CONFIG.replace("region = us-east-1\n", ""),
                    credentials=STATIC_PROFILE)

    with pytest.raises(CloudError) as error:
        resolve_credentials("role")

    assert str(error.value) == (
        "AWS profile 'role' needs an AWS region to fetch its credentials; fix: set s3.region, "
        "or `region = ...` in the profile"
    )


def test_unknown_profile_names_the_known_ones(aws_files):
    aws_files.write(config=STATIC_CONFIG, credentials=STATIC_PROFILE)

    with pytest.raises(CloudError) as error:
        resolve_credentials("missing")

    assert str(error.value) == (
        "AWS profile 'missing' not found in the AWS config/credentials files "
        "(known profiles: role, static); fix: run `aws configure --profile missing` "
        "or set s3.profile to a known profile"
    )


def test_no_credentials_anywhere(aws_files):
    with pytest.raises(CloudError) as error:
        resolve_credentials(None)

    assert str(error.value) == (
        "no AWS credentials found in the default AWS credential chain; fix: set s3.profile "
        "to a configured profile (`aws configure --profile NAME`), or run on an instance "
        "with an IAM role"
    )


def test_default_chain_reads_environment_variables(aws_files, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-env-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")

    assert resolve_credentials(None) == ResolvedCredentials(
        access_key="testing-env-key", secret_key="testing-env-secret",
        region="eu-north-1", method="env", profile=None,
    )


def test_profile_with_only_an_access_key(aws_files):
    aws_files.write(credentials=f"[half]\naws_access_key_id = {TEST_ACCESS_KEY}\n")

    with pytest.raises(CloudError) as error:
        resolve_credentials("half")

    assert str(error.value) == (
        "AWS profile 'half' has incomplete credentials (aws_secret_access_key is missing); "
        "fix: set both aws_access_key_id and aws_secret_access_key"
    )


def test_sso_profile_without_a_login(aws_files):
    aws_files.write(config="""
[profile sso]
sso_start_url = https://example.awsapps.com/start
sso_region = us-east-1
sso_account_id = 123456789012
sso_role_name = ReadOnly
region = us-east-1
""")

    with pytest.raises(CloudError) as error:
        resolve_credentials("sso")

    assert str(error.value) == (
        "the SSO session for AWS profile 'sso' is missing or expired; "
        "fix: run `aws sso login --profile sso`"
    )


class _StubbedStsSession(boto3.Session):
    """A Session whose STS client answers from a botocore Stubber."""

    def __init__(self, error_code: str) -> None:
        super().__init__(aws_access_key_id=TEST_ACCESS_KEY,
                         aws_secret_access_key=TEST_SECRET_KEY, region_name="us-east-1")
        self.error_code = error_code

    def client(self, *args, **kwargs):
        sts = super().client(*args, **kwargs)
        stubber = Stubber(sts)
        stubber.add_client_error("get_caller_identity", service_error_code=self.error_code,
                                 service_message="stubbed", http_status_code=403)
        stubber.activate()
        return sts


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ExpiredToken",
         "the credentials from the default AWS credential chain have expired; fix: refresh "
         "the session credentials (new session token / re-assume the role)"),
        ("InvalidClientTokenId",
         "AWS rejected the credentials from the default AWS credential chain "
         "(InvalidClientTokenId); fix: the access key is deleted, inactive or mistyped: "
         "create a new one and update the profile"),
        ("Throttling",
         "checking the credentials from the default AWS credential chain failed: "
         "Throttling: stubbed"),
    ],
)
def test_verification_failures_name_cause_and_fix(aws_files, code, message):
    with pytest.raises(CloudError) as error:
        credentials_from_session(_StubbedStsSession(code), verify=True)

    assert str(error.value) == message


# --- secrets stay hidden -------------------------------------------------------------------

def test_repr_shows_no_secret():
    for text in (repr(TEMPORARY), str(TEMPORARY)):
        assert "testing-session-secret" not in text
        assert "testing-session-token" not in text
        assert "testing-session-key" not in text
    assert repr(TEMPORARY) == (
        "ResolvedCredentials(method='assume-role', profile='role', region='us-east-1', "
        "access_key='...-key', temporary=True)"
    )


def test_no_secret_reaches_the_logs(aws_files, caplog):
    aws_files.write(config=STATIC_CONFIG, credentials=STATIC_PROFILE)
    caplog.set_level(logging.DEBUG, logger="bovw")

    resolved = resolve_credentials("role", verify=True)
    properties = hadoop_s3a_properties(resolved, S3Settings())
    logging.getLogger("bovw.test").info("effective: %s", Redactor().properties(properties))

    assert "AWS credentials resolved" in caplog.text
    for secret in (resolved.secret_key, resolved.token, resolved.access_key, TEST_SECRET_KEY):
        assert secret not in caplog.text


# --- Hadoop S3A properties -----------------------------------------------------------------

def test_static_keys_use_the_simple_provider_and_the_magic_committer():
    assert hadoop_s3a_properties(STATIC, S3Settings()) == {
        "spark.hadoop.fs.s3a.aws.credentials.provider":
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "spark.hadoop.fs.s3a.access.key": "testing-access-key",
        "spark.hadoop.fs.s3a.secret.key": "testing-secret-key",
        "spark.hadoop.fs.s3a.endpoint.region": "eu-west-1",
        "spark.hadoop.fs.s3a.path.style.access": "false",
        "spark.hadoop.fs.s3a.committer.name": "magic",
        "spark.hadoop.fs.s3a.committer.magic.enabled": "true",
        "spark.hadoop.mapreduce.outputcommitter.factory.scheme.s3a":
            "org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory",
        "spark.sql.sources.commitProtocolClass":
            "org.apache.spark.internal.io.cloud.PathOutputCommitProtocol",
        "spark.sql.parquet.output.committer.class":
            "org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter",
    }


def test_session_credentials_custom_endpoint_and_directory_committer():
    settings = S3Settings(region="eu-central-1", endpoint="http://127.0.0.1:9000",
                          path_style_access=True, committer="directory")

    assert hadoop_s3a_properties(TEMPORARY, settings) == {
        "spark.hadoop.fs.s3a.aws.credentials.provider":
            "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
        "spark.hadoop.fs.s3a.access.key": "testing-session-key",
        "spark.hadoop.fs.s3a.secret.key": "testing-session-secret",
        "spark.hadoop.fs.s3a.session.token": "testing-session-token",
        "spark.hadoop.fs.s3a.endpoint.region": "eu-central-1",
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:9000",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.committer.name": "directory",
        "spark.hadoop.mapreduce.outputcommitter.factory.scheme.s3a":
            "org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory",
        "spark.sql.sources.commitProtocolClass":
            "org.apache.spark.internal.io.cloud.PathOutputCommitProtocol",
        "spark.sql.parquet.output.committer.class":
            "org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter",
    }


@pytest.mark.parametrize("method", ["iam-role", "container-role"])
def test_instance_role_lets_hadoop_fetch_its_own_credentials(method):
    role = ResolvedCredentials(access_key="testing-role-key", secret_key="testing-role-secret",
                               token="testing-role-token", region="us-west-2", method=method)

    assert hadoop_s3a_properties(role, S3Settings(committer="none")) == {
        "spark.hadoop.fs.s3a.endpoint.region": "us-west-2",
        "spark.hadoop.fs.s3a.path.style.access": "false",
    }


def test_no_credentials_leaves_hadoop_default_chain():
    assert hadoop_s3a_properties(None, S3Settings(committer="none")) == {
        "spark.hadoop.fs.s3a.path.style.access": "false",
    }


# --- URLs -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket/Training", "s3a://bucket/Training"),
        ("s3n://bucket/a b/c.jpg", "s3a://bucket/a b/c.jpg"),
        ("S3://bucket/x", "s3a://bucket/x"),
        ("s3a://bucket/x", "s3a://bucket/x"),
        ("/data/fruits", "/data/fruits"),
        ("file:///data/fruits", "file:///data/fruits"),
        ("hdfs://nn/data", "hdfs://nn/data"),
    ],
)
def test_normalise_s3_url(url, expected):
    assert normalise_s3_url(url) == expected


def test_normalising_is_logged(caplog):
    caplog.set_level(logging.INFO, logger="bovw")

    normalise_s3_url("s3://bucket/in")

    assert "using s3a://bucket/in for s3://bucket/in" in caplog.text


def test_uses_s3():
    assert uses_s3("/local", "s3://b/x")
    assert uses_s3(None, "S3A://b/x")
    assert not uses_s3("/local", None, "file:///x")


# --- jars -----------------------------------------------------------------------------------

def _jars(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


@pytest.fixture
def fake_pyspark_jars(tmp_path: Path) -> Path:
    return _jars(tmp_path / "pyspark-jars", "hadoop-client-api-3.5.0.jar",
                 "hadoop-client-runtime-3.5.0.jar", "spark-core_2.13-4.3.0.jar",
                 "parquet-hadoop-1.17.0.jar")


def test_versions_read_from_the_jar_names_are_those_the_jvm_runs(spark):
    """bovw reads the bundled Hadoop, Spark and Scala versions from pyspark's jar names,
    whatever pyspark is installed; they must be what the driver JVM actually runs."""
    import pyspark

    versions = bundled_versions(pyspark_jars_dir())
    jvm = spark.sparkContext._jvm

    assert versions.hadoop == jvm.org.apache.hadoop.util.VersionInfo.getVersion()
    assert versions.spark == spark.version == pyspark.__version__
    scala = jvm.scala.util.Properties.versionNumberString()
    assert versions.scala == ".".join(scala.split(".")[:2])


def test_s3a_packages_for_the_installed_pyspark(spark):
    """hadoop-aws must be the very version of the Hadoop the JVM runs, with the AWS SDK
    bundle that hadoop-aws release was tested with (known for every supported pyspark)."""
    hadoop = spark.sparkContext._jvm.org.apache.hadoop.util.VersionInfo.getVersion()
    assert hadoop in AWS_SDK_BUNDLE_FOR_HADOOP, (
        f"pyspark {spark.version} bundles Hadoop {hadoop}: add the AWS SDK bundle its "
        "hadoop-project POM names (aws-java-sdk-v2.version) to AWS_SDK_BUNDLE_FOR_HADOOP")

    jars = s3a_jars(pyspark_jars_dir(), S3Settings())

    assert jars == S3AJars(hadoop_version=hadoop, packages=(
        f"org.apache.hadoop:hadoop-aws:{hadoop}",
        f"software.amazon.awssdk:bundle:{AWS_SDK_BUNDLE_FOR_HADOOP[hadoop]}",
        f"org.apache.spark:spark-hadoop-cloud_2.13:{spark.version}",
    ))


def test_packages_match_the_bundled_hadoop(fake_pyspark_jars):
    jars = s3a_jars(fake_pyspark_jars, S3Settings())

    assert jars == S3AJars(hadoop_version="3.5.0", packages=(
        "org.apache.hadoop:hadoop-aws:3.5.0",
        "software.amazon.awssdk:bundle:2.35.4",
        "org.apache.spark:spark-hadoop-cloud_2.13:4.3.0",
    ))
    assert jars.spark_conf() == {"spark.jars.packages": ",".join(jars.packages)}


def test_no_committer_needs_no_spark_hadoop_cloud(fake_pyspark_jars):
    assert s3a_jars(fake_pyspark_jars, S3Settings(committer="none")).packages == (
        "org.apache.hadoop:hadoop-aws:3.5.0",
        "software.amazon.awssdk:bundle:2.35.4",
    )


def test_unknown_hadoop_version_lets_hadoop_aws_bring_its_sdk(tmp_path):
    pyspark_jars = _jars(tmp_path / "p", "hadoop-client-api-3.9.1.jar",
                         "spark-core_2.13-5.0.0.jar")

    assert s3a_jars(pyspark_jars, S3Settings(committer="none")).packages == (
        "org.apache.hadoop:hadoop-aws:3.9.1",
    )


def test_platform_provided_jars(fake_pyspark_jars):
    jars = s3a_jars(fake_pyspark_jars, S3Settings(packages=False))

    assert jars == S3AJars(hadoop_version="3.5.0")
    assert jars.spark_conf() == {}


def test_jars_dir_with_matching_jars(fake_pyspark_jars, tmp_path):
    folder = _jars(tmp_path / "s3a", "hadoop-aws-3.5.0.jar", "bundle-2.35.4.jar",
                   "spark-hadoop-cloud_2.13-4.3.0.jar", "unrelated-1.0.jar")

    jars = s3a_jars(fake_pyspark_jars, S3Settings(jars_dir=str(folder)))

    assert jars.jars == (str(folder / "hadoop-aws-3.5.0.jar"), str(folder / "bundle-2.35.4.jar"),
                         str(folder / "spark-hadoop-cloud_2.13-4.3.0.jar"))
    assert jars.packages == ()


def test_jars_dir_without_hadoop_aws(fake_pyspark_jars, tmp_path):
    folder = _jars(tmp_path / "s3a", "bundle-2.35.4.jar")

    with pytest.raises(CloudError) as error:
        s3a_jars(fake_pyspark_jars, S3Settings(jars_dir=str(folder)))

    assert str(error.value) == (
        f"no hadoop-aws jar in s3.jars_dir {folder}; fix: put hadoop-aws-3.5.0.jar and "
        "bundle-2.35.4.jar there (pyspark bundles Hadoop 3.5.0), or unset s3.jars_dir to use "
        "s3.packages"
    )


def test_jars_dir_with_another_hadoop_version(fake_pyspark_jars, tmp_path):
    folder = _jars(tmp_path / "s3a", "hadoop-aws-3.4.1.jar", "bundle-2.24.6.jar")

    with pytest.raises(CloudError) as error:
        s3a_jars(fake_pyspark_jars, S3Settings(jars_dir=str(folder)))

    assert str(error.value) == (
        f"hadoop-aws-3.4.1.jar in s3.jars_dir {folder} does not match the Hadoop 3.5.0 "
        "bundled with pyspark; fix: replace it with hadoop-aws-3.5.0.jar"
    )


def test_jars_dir_with_an_older_sdk_bundle(fake_pyspark_jars, tmp_path):
    folder = _jars(tmp_path / "s3a", "hadoop-aws-3.5.0.jar", "bundle-2.29.52.jar")

    with pytest.raises(CloudError) as error:
        s3a_jars(fake_pyspark_jars, S3Settings(jars_dir=str(folder), committer="none"))

    assert str(error.value) == (
        f"bundle-2.29.52.jar in s3.jars_dir {folder} is older than the AWS SDK 2.35.4 "
        "hadoop-aws 3.5.0 needs; fix: replace it with bundle-2.35.4.jar"
    )


def test_jars_dir_without_sdk_bundle(fake_pyspark_jars, tmp_path):
    folder = _jars(tmp_path / "s3a", "hadoop-aws-3.5.0.jar")

    with pytest.raises(CloudError) as error:
        s3a_jars(fake_pyspark_jars, S3Settings(jars_dir=str(folder), committer="none"))

    assert str(error.value) == (
        f"expected one AWS SDK v2 bundle-2.x.y.jar in s3.jars_dir {folder}, found 0; "
        "fix: keep only bundle-2.35.4.jar there"
    )


def test_jars_dir_without_spark_hadoop_cloud_for_a_committer(fake_pyspark_jars, tmp_path):
    folder = _jars(tmp_path / "s3a", "hadoop-aws-3.5.0.jar", "bundle-2.35.4.jar",
                   "spark-hadoop-cloud_2.13-4.0.0.jar")

    with pytest.raises(CloudError) as error:
        s3a_jars(fake_pyspark_jars, S3Settings(jars_dir=str(folder), committer="magic"))

    assert str(error.value) == (
        f"no spark-hadoop-cloud_2.13-4.3.0.jar in s3.jars_dir {folder} (found "
        "spark-hadoop-cloud_2.13-4.0.0.jar); the S3A committers need it: fix: add "
        'spark-hadoop-cloud_2.13-4.3.0.jar, or set s3.committer = "none"'
    )


def test_jars_dir_that_does_not_exist(fake_pyspark_jars, tmp_path):
    with pytest.raises(CloudError, match="jars folder not found: .*nowhere"):
        s3a_jars(fake_pyspark_jars, S3Settings(jars_dir=str(tmp_path / "nowhere")))


def test_folder_that_is_not_pyspark_jars(tmp_path):
    with pytest.raises(CloudError) as error:
        bundled_versions(_jars(tmp_path / "other", "a.jar"))

    assert str(error.value) == (
        f"expected one hadoop-client-api-X.Y.Z.jar in {tmp_path / 'other'}, found 0; "
        "fix: point at pyspark's own jars folder (pyspark/jars)"
    )


def test_spark_setup_holds_the_secrets_for_the_session_and_shows_none(fake_pyspark_jars):
    setup = spark_s3a_setup(S3Settings(region="eu-west-1"), TEMPORARY, fake_pyspark_jars)

    assert {key: setup.spark_conf[key] for key in (
        "spark.hadoop.fs.s3a.access.key", "spark.hadoop.fs.s3a.secret.key",
        "spark.hadoop.fs.s3a.session.token")} == {
        "spark.hadoop.fs.s3a.access.key": "testing-session-key",
        "spark.hadoop.fs.s3a.secret.key": "testing-session-secret",
        "spark.hadoop.fs.s3a.session.token": "testing-session-token",
    }
    assert setup.spark_conf["spark.jars.packages"] == (
        "org.apache.hadoop:hadoop-aws:3.5.0,software.amazon.awssdk:bundle:2.35.4,"
        "org.apache.spark:spark-hadoop-cloud_2.13:4.3.0"
    )
    assert setup.spark_conf["spark.hadoop.fs.s3a.aws.credentials.provider"] == (
        "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
    )
    for secret in ("testing-session-key", "testing-session-secret", "testing-session-token"):
        assert secret not in repr(setup)


# --- configuration --------------------------------------------------------------------------

def test_example_emr_config_loads():
    config = load_config(Path(__file__).parent.parent / "conf" / "emr" / "emr.toml")

    assert config.s3 == S3Settings(packages=False, committer="none", region="eu-west-1")
    assert config.emr.release_label == "emr-spark-8.0.0"
    assert dict(config.emr.spark_conf) == {"spark.executor.memory": "8g",
                                           "spark.executor.cores": "4"}
    assert config.to_dict()["emr"]["tags"] == {"project": "bovw"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"s3.committer": "fast"},
         "s3.committer must be one of magic, directory, partitioned, none (got 'fast')"),
        ({"s3.endpoint": "minio:9000"},
         "s3.endpoint must start with http:// or https:// (got 'minio:9000')"),
        ({"s3.upload_concurrency": "0"}, "s3.upload_concurrency must be in 1..256"),
        ({"emr.release_label": "emr-7.9.0"},
         "emr.release_label 'emr-7.9.0' ships Spark 3; bovw needs Spark 4: use "
         "emr-spark-8.0.0 or later"),
        ({"emr.job_script": "/local/pipeline.py"},
         "emr.job_script must be an s3:// URI (got '/local/pipeline.py')"),
        ({"emr.action_on_failure": "IGNORE"},
         "emr.action_on_failure must be one of TERMINATE_CLUSTER, CANCEL_AND_WAIT, CONTINUE"),
    ],
)
def test_bad_cloud_settings(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)

    assert str(error.value) == message


@pytest.mark.parametrize("url", [
    "/home/ann@example/fruits", "s3a://bucket/photos@2x/a.jpg", "file:///data/a@b",
    "fruits@home"])
def test_an_at_sign_outside_the_authority_is_a_plain_path(url):
    assert normalise_s3_url(url) == url


@pytest.mark.parametrize("command, flag", [("run", "--descriptors-from"),
                                           ("sweep", "--descriptors-from"),
                                           ("compare", "--descriptors-from"),
                                           ("compare", "--cnn-features")])
def test_an_s3_url_of_reused_outputs_sets_up_s3(aws_files, tmp_path, capsys, command, flag):
    """Only --input and --output used to count: an s3:// --descriptors-from beside a local
    input reached Spark without the s3a setup (and as s3://, which hadoop-aws does not
    serve). It now asks for credentials like any S3 path."""
    from bovw.cli import main

    images = tmp_path / "in"
    for split in ("Training", "Test"):
        for fruit in ("Apple", "Pear"):
            (images / split / fruit).mkdir(parents=True)
            (images / split / fruit / "a.jpg").write_bytes(b"not read before the session")

    code = main([command, "--input", str(images), "--output", str(tmp_path / "out"),
                 "--k", "8", flag, "s3://bucket/runs/a/descriptors"])

    assert code == 1
    assert capsys.readouterr().err.startswith(
        "bovw: error: no AWS credentials found in the default AWS credential chain")
    assert not (tmp_path / "out").exists()
