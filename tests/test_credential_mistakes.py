"""Common AWS credential mistakes end in one line naming the cause and the fix, never a
traceback and never a key (bovw.cloud.credentials, bovw.cloud.s3, bovw.cloud.emr).

Each test sets the AWS environment it needs explicitly, on top of the isolated one of the
`aws_files` fixture (empty config files, no AWS_* variables, moto as every endpoint)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bovw.cli import main
from bovw.cloud.credentials import boto3_session, resolve_credentials
from bovw.cloud.emr import emr_client
from bovw.cloud.s3 import s3_client
from bovw.config import EmrSettings, S3Settings
from bovw.errors import CloudError

CONF = Path(__file__).parent.parent / "conf"
ACCESS_KEY = "AKIATESTMISTAKE0042"
SECRET_KEY = "mistake/secret+0042"
CREDENTIALS = f"""
[fake]
aws_access_key_id = {ACCESS_KEY}
aws_secret_access_key = {SECRET_KEY}

[half]
aws_access_key_id = {ACCESS_KEY}
"""
CONFIG = """
[profile orphan]
role_arn = arn:aws:iam::123456789012:role/bovw-test
source_profile = nowhere

[profile process]
credential_process = sh -c "echo leaked-process-output-0042 >&2; exit 3"
"""
GHOST = ("AWS profile 'ghost' not found in the AWS config/credentials files (known profiles: "
         "fake, half, orphan, process); fix: run `aws configure --profile ghost` or unset "
         "AWS_PROFILE (and AWS_DEFAULT_PROFILE) or name a known profile there")


@pytest.fixture
def aws(aws_files, monkeypatch):
    aws_files.write(config=CONFIG, credentials=CREDENTIALS)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return monkeypatch


def _one_line(capsys, argv, code=1) -> str:
    assert main(argv) == code
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == 1, captured.err
    for secret in (ACCESS_KEY, SECRET_KEY, "leaked-process-output-0042"):
        assert secret not in captured.err and secret not in captured.out
    return captured.err.removeprefix("bovw: error: ").rstrip("\n")


def test_an_unknown_aws_profile_variable_is_one_line(aws):
    """The handler of ProfileNotFound called boto3.Session() again, which read AWS_PROFILE
    again and raised ProfileNotFound from inside the handler."""
    aws.setenv("AWS_PROFILE", "ghost")

    with pytest.raises(CloudError) as error:
        resolve_credentials(None)
    assert str(error.value) == GHOST
    with pytest.raises(CloudError):
        boto3_session(None)


def test_run_with_an_unknown_aws_profile_variable(aws, tmp_path, capsys):
    aws.setenv("AWS_PROFILE", "ghost")

    assert _one_line(capsys, ["run", "--input", "s3a://bkt/f/", "--output",
                              str(tmp_path / "x"), "--set", "s3.packages=false"]) == GHOST


def test_emr_submit_with_an_unknown_aws_profile_variable(aws, capsys):
    aws.setenv("AWS_PROFILE", "ghost")

    assert _one_line(capsys, [
        "emr", "submit", "--config", str(CONF / "emr" / "emr.toml"),
        "--config-uri", "s3://bkt/c.toml", "--input", "s3://bkt/f/",
        "--output", "s3://bkt/r/"]) == GHOST


@pytest.mark.parametrize("flags, environment, message", [
    (["--profile", "half"], {},
     "AWS profile 'half' has incomplete credentials (aws_secret_access_key is missing); fix: "
     "set both aws_access_key_id and aws_secret_access_key"),
    ([], {"AWS_ACCESS_KEY_ID": ACCESS_KEY},
     "the environment holds incomplete AWS credentials (AWS_SECRET_ACCESS_KEY is missing); "
     "fix: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY together, or unset both to use a "
     "profile"),
    (["--profile", "orphan"], {},
     "AWS profile 'orphan' is misconfigured: The source_profile \"nowhere\" referenced in the "
     "profile \"orphan\" does not exist.; fix: correct ~/.aws/config"),
    (["--profile", "process"], {},
     "AWS profile 'process' could not provide credentials: its custom-process failed; fix: "
     "run the profile's credential_process (or login) yourself to see why"),
])
def test_s3_commands_report_credential_mistakes_in_one_line(aws, capsys, moto_endpoint,
                                                            flags, environment, message):
    """boto3 resolves the credentials when it creates the client, outside any translation:
    PartialCredentialsError, InvalidConfigError, CredentialRetrievalError tracebacks."""
    for name, value in environment.items():
        aws.setenv(name, value)

    err = _one_line(capsys, ["s3", "ls", "s3://bkt/", "--endpoint", moto_endpoint, *flags])

    assert err == message


def test_clients_translate_credential_mistakes(aws):
    session = boto3_session("half")
    with pytest.raises(CloudError, match="^AWS profile 'half' has incomplete credentials"):
        s3_client(S3Settings(), session)
    with pytest.raises(CloudError, match="^AWS profile 'half' has incomplete credentials"):
        emr_client(EmrSettings(region="us-east-1"), session)


def test_run_on_a_missing_bucket_or_an_unreachable_endpoint_says_so_before_spark(
        aws, moto_endpoint, tmp_path, capsys):
    # Review 4: each was reported as the s3a jars' download failure (Spark's connector
    # checks nothing before its jars are there); `bovw s3 ls` named each cause.
    argv = ["run", "--input", "s3a://no-such-bucket-0042/fruits/", "--output",
            str(tmp_path / "x"), "--profile", "fake", "--set", "s3.path_style_access=true"]
    assert _one_line(capsys, [*argv, "--set", f"s3.endpoint={moto_endpoint}"]) == (
        "bucket 'no-such-bucket-0042' does not exist; fix: create it (`aws s3 mb "
        "s3://no-such-bucket-0042`) or correct the URL")
    unreachable = _one_line(capsys, [*argv, "--set", "s3.endpoint=http://127.0.0.1:9"])
    assert "s3://no-such-bucket-0042/fruits/" in unreachable, unreachable
    assert not (tmp_path / "x").exists()
