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


def _raise_with(text: str) -> None:
    raise RuntimeError(f"request failed: {text}")


def test_a_logged_exception_trace_is_masked(caplog):
    mask_in_logs(SECRET)
    caplog.set_level(logging.DEBUG)
    try:
        _raise_with(f"secret key {SECRET} refused")
    except RuntimeError:
        logging.getLogger("bovw.test").exception("the upload failed")
    assert "Traceback (most recent call last)" in caplog.text
    assert "_raise_with" in caplog.text  # the frames are kept
    assert f"RuntimeError: request failed: secret key {MASK} refused" in caplog.text
    assert SECRET not in caplog.text
    # The exception itself is gone from the record: no handler can format it again.
    assert caplog.records[-1].exc_info is None


def test_a_trace_without_secrets_is_left_to_the_formatter(caplog):
    install()
    caplog.set_level(logging.DEBUG)
    try:
        _raise_with("no secret in here")
    except RuntimeError:
        logging.getLogger("bovw.test").exception("the upload failed")
    record = caplog.records[-1]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert "RuntimeError: request failed: no secret in here" in caplog.text


def _log_with_stack(message: str, _shown_in_the_stack: str) -> None:
    logging.getLogger("bovw.test").debug(message, stack_info=True)


def test_a_logged_stack_and_url_credentials_are_masked(caplog):
    mask_in_logs(SECRET)
    caplog.set_level(logging.DEBUG)
    # The stack quotes the calling line, secret and all.
    _log_with_stack("at http://user:pa55word@host/x", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    assert "Stack (most recent call last)" in caplog.text
    assert f'_log_with_stack("at http://***@host/x", "{MASK}")' in caplog.text
    assert "at http://***@host/x" in caplog.text
    assert SECRET not in caplog.text and "pa55word" not in caplog.text


def test_printed_errors_and_traces_mask_registered_secrets(capsys, monkeypatch):
    from bovw.cli import cloud as cloud_commands
    from bovw.cli import main
    from bovw.errors import CloudError

    def fail(_args, _environ):
        try:
            _raise_with(f"token {TOKEN}")
        except RuntimeError as error:
            raise CloudError(f"the bucket refused the secret key {SECRET}") from error

    mask_in_logs(SECRET, TOKEN)
    monkeypatch.setitem(cloud_commands.HANDLERS, "s3", fail)
    assert main(["s3", "ls", "s3://bkt/x/"]) == 1
    assert capsys.readouterr().err == f"bovw: error: the bucket refused the secret key {MASK}\n"
    assert main(["s3", "ls", "s3://bkt/x/", "--verbose"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and f"RuntimeError: request failed: token {MASK}" in err
    assert SECRET not in err and TOKEN not in err


def test_a_record_made_with_exc_info_true_is_left_to_logging():
    install()
    # Only a Logger turns exc_info=True into the exception's tuple; the factory gets it raw.
    record = logging.getLogRecordFactory()("x", logging.ERROR, __file__, 1, "failed", None,
                                           True)
    assert record.exc_info is True and record.exc_text is None
