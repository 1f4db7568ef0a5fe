"""Fixtures for the cloud tests: a local moto server and an isolated AWS configuration.

tests/conftest.py imports them for every test module. Every key here is an
obviously fake test value; nothing reaches AWS: all clients point at moto on 127.0.0.1.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from bovw.cloud.s3 import s3_client
from bovw.config import S3Settings

TEST_REGION = "us-east-1"
TEST_ACCESS_KEY = "testing-access-key"
TEST_SECRET_KEY = "testing-secret-key"

_AWS_VARIABLES = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_EMR",
    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto server (S3, STS, EMR, ...) on 127.0.0.1, stopped after the session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass
class AwsFiles:
    """The temporary AWS config and credentials files the test process uses."""

    config: Path
    credentials: Path

    def write(self, config: str = "", credentials: str = "") -> None:
        self.config.write_text(config, encoding="utf-8")
        self.credentials.write_text(credentials, encoding="utf-8")


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> AwsFiles:
    """An AWS environment with no credentials: empty temp config files, no AWS_* variables,
    no instance metadata, and every AWS endpoint on the moto server."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    files = AwsFiles(config=tmp_path / "aws-config", credentials=tmp_path / "aws-credentials")
    files.write()
    monkeypatch.setenv("AWS_CONFIG_FILE", str(files.config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(files.credentials))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    # SSO token caches live under the home folder.
    monkeypatch.setenv("HOME", str(tmp_path))
    return files


@pytest.fixture
def s3_settings(moto_endpoint: str) -> S3Settings:
    return S3Settings(endpoint=moto_endpoint, path_style_access=True, region=TEST_REGION)


@pytest.fixture
def test_session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
        region_name=TEST_REGION,
    )


@pytest.fixture
def s3(s3_settings: S3Settings, test_session: boto3.Session):
    """A real boto3 S3 client talking to the moto server."""
    return s3_client(s3_settings, test_session)


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, empty bucket on the moto server."""
    name = f"bovw-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name
