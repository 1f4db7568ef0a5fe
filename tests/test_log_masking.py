"""Secrets never reach a log record, even with every library logging at DEBUG."""

import logging

import boto3
import pytest
from moto import mock_aws

from bovw.cloud.credentials import ResolvedCredentials, boto3_session
from bovw.config.log_masking import MASK, install, mask_in_logs, masked

KEY_ID = "AKIAEXAMPLEKEYID1234"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD"


def test_masked_hides_header_tokens_and_key_ids_whatever_their_value():
    install()
    assert masked("x-amz-security-token:FwoGZXIvYXdzEJr/abc=") == f"x-amz-security-token:{MASK}"
    assert masked("{'X-Amz-Security-Token': b'FwoGZXIvYXdzEJr/abc=', 'A': b'1'}") == (
        f"{{'X-Amz-Security-Token': b'{MASK}', 'A': b'1'}}")
    assert masked("AWS4-HMAC-SHA256 Credential=AKIAOTHERKEY0000/20261202/us-east-1/s3/"
                  "aws4_request, SignedHeaders=host") == (
        f"AWS4-HMAC-SHA256 Credential={MASK}/20261202/us-east-1/s3/aws4_request, "
        "SignedHeaders=host")
    assert masked("nothing secret here: 42 images") == "nothing secret here: 42 images"


def test_registered_values_are_masked_and_short_ones_ignored():
    mask_in_logs("s3cr3t-value-123", "short", None)
    assert masked("set fs.s3a.secret.key s3cr3t-value-123 now") == (
        f"set fs.s3a.secret.key {MASK} now")
    # Values under 8 characters would mask ordinary words.
    assert masked("a short line") == "a short line"


def test_resolved_credentials_are_masked_in_py4j_debug_lines(caplog):
    ResolvedCredentials(access_key=KEY_ID, secret_key=SECRET, token=TOKEN)
    caplog.set_level(logging.DEBUG)
    # What py4j logs for SparkConf.set of the s3a secret key.
    logging.getLogger("py4j.clientserver").debug(
        "Command to send: %s", f"c\no1\nset\nsspark.hadoop.fs.s3a.secret.key\ns{SECRET}\ne\n")
    assert SECRET not in caplog.text
    assert f"s{MASK}" in caplog.text


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    # No credentials or config of the machine: the client gets explicit ones only.
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))


def test_botocore_debug_log_shows_no_credential(caplog, aws_env):
    boto3_session(None)  # bovw's session: installs the masking
    # Credentials bovw never resolved itself (botocore refreshing a role, say): the
    # header patterns still hide the token and the key id.
    unseen_token = "FwoGZXIvYXdzEND0fUnSeEnT0kEnValue/+="
    caplog.set_level(logging.DEBUG)
    with mock_aws():
        client = boto3.session.Session(
            aws_access_key_id="AKIAUNSEENKEYID99999", aws_secret_access_key=SECRET,
            aws_session_token=unseen_token, region_name="us-east-1").client("s3")
        client.create_bucket(Bucket="masking-bucket")
        client.put_object(Bucket="masking-bucket", Key="k", Body=b"x")
    assert "Sending http request" in caplog.text  # botocore did log the requests
    for secret in (unseen_token, "AKIAUNSEENKEYID99999", SECRET):
        assert secret not in caplog.text
    assert f"x-amz-security-token:{MASK}" in caplog.text


def test_a_record_that_cannot_be_formatted_is_left_to_logging(caplog):
    install()
    caplog.set_level(logging.DEBUG)
    factory = logging.getLogRecordFactory()
    record = factory("x", logging.DEBUG, __file__, 1, "%d items", ("many",), None)
    assert record.msg == "%d items" and record.args == ("many",)
