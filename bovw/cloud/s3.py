"""Copy a local dataset folder to S3 and list what is there, with boto3.

`upload` lists the destination prefix once (ListObjectsV2, paginated), skips files already
there with the same size, and uploads the rest concurrently, each file with boto3's managed
transfer (multipart above a threshold). Keys keep the path relative to the local folder, so
`Training/Apple Braeburn/0_100.jpg` stays a class folder with its space.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from bovw.cloud.credentials import credential_errors, request_error
from bovw.cloud.s3a import refuse_credentials_in_url
from bovw.config import S3Settings
from bovw.errors import CloudError

__all__ = ["CONNECT_TIMEOUT_SECONDS", "RETRIES", "S3Object", "UploadReport", "list_objects",
           "local_files", "parse_s3_url", "s3_client", "upload"]

log = logging.getLogger(__name__)

# A connection S3 has not accepted within this many seconds will not be: no network.
CONNECT_TIMEOUT_SECONDS = 10
RETRIES = {"mode": "standard", "max_attempts": 5}

# Errors after which every further request would fail the same way.
_FATAL_CODES = {
    "AccessDenied": "access denied",
    "AllAccessDisabled": "access denied",
    "NoSuchBucket": "bucket does not exist",
    "InvalidAccessKeyId": "the access key is not valid",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "ExpiredToken": "the session credentials have expired",
    "InvalidToken": "the session token is not valid",
}


@dataclass(frozen=True)
class S3Object:
    """One listed object."""

    key: str
    size: int


@dataclass(frozen=True)
class UploadReport:
    """What an upload did; `failures` pairs each failed key with its reason."""

    uploaded: int
    skipped: int
    failed: int
    bytes_uploaded: int
    failures: tuple[tuple[str, str], ...] = ()

    def summary(self) -> str:
        """One line: counts and bytes."""
        return (
            f"uploaded {self.uploaded}, skipped {self.skipped} unchanged, failed {self.failed}, "
            f"{_human_bytes(self.bytes_uploaded)} sent"
        )


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key prefix) of an s3://, s3a:// or s3n:// URL."""
    refuse_credentials_in_url(url)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("s3", "s3a", "s3n"):
        raise CloudError(f"not an S3 URL: {url!r}; fix: use s3://bucket/prefix")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise CloudError(f"no bucket in S3 URL {url!r}; fix: use s3://bucket/prefix")
    return bucket, key


def _folder_prefix(key: str) -> str:
    # "data" must not also match "data2/...": a non-empty prefix is a folder.
    return key if not key or key.endswith("/") else key + "/"


def s3_client(settings: S3Settings, session: boto3.Session | None = None) -> Any:
    """A thread-safe S3 client honouring s3.region, s3.endpoint and s3.path_style_access,
    with a connection pool large enough for s3.upload_concurrency."""
    session = session or boto3.Session()
    config = botocore.config.Config(
        max_pool_connections=max(10, settings.upload_concurrency * 2),
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        retries=dict(RETRIES),
        s3={"addressing_style": "path"} if settings.path_style_access else None,
    )
    # boto3 resolves the credentials here: a broken profile raises now, not at the request.
    with credential_errors(session):
        return session.client(
            "s3", region_name=settings.region, endpoint_url=settings.endpoint, config=config
        )


def list_objects(s3_url: str, client: Any, *, page_size: int = 1000) -> Iterator[S3Object]:
    """Every object under the folder `s3_url` (recursively), in key order, fetched
    `page_size` keys per ListObjectsV2 request. Raises CloudError."""
    bucket, key = parse_s3_url(s3_url)
    prefix = _folder_prefix(key)
    paginator = client.get_paginator("list_objects_v2")
    pages = paginator.paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
    )
    try:
        for page in pages:
            for item in page.get("Contents", []):
                yield S3Object(key=item["Key"], size=int(item["Size"]))
    except botocore.exceptions.ClientError as error:
        raise _cloud_error(error, bucket, prefix, "s3:ListBucket") from error
    except botocore.exceptions.BotoCoreError as error:
        raise request_error(error, f"listing s3://{bucket}/{prefix}") from error


def _cloud_error(
    error: botocore.exceptions.ClientError, bucket: str, key: str, permission: str
) -> CloudError:
    code = error.response.get("Error", {}).get("Code", "")
    where = f"s3://{bucket}/{key}"
    if code == "NoSuchBucket":
        return CloudError(
            f"bucket {bucket!r} does not exist; fix: create it (`aws s3 mb s3://{bucket}`) "
            "or correct the URL"
        )
    if code in ("AccessDenied", "AllAccessDisabled", "403"):
        return CloudError(
            f"access denied to {where}; fix: grant {permission} on it to the identity in use "
            "(see conf/iam/)"
        )
    if code in _FATAL_CODES:
        return CloudError(
            f"{_FATAL_CODES[code]} ({code}) at {where}; fix: refresh or correct the credentials"
        )
    message = error.response.get("Error", {}).get("Message", "")
    return CloudError(f"S3 request for {where} failed: {code} {message}".rstrip())


def local_files(local_dir: str | Path) -> list[tuple[Path, str]]:
    """(path, relative key) of every file under `local_dir`, sorted by key."""
    root = Path(local_dir)
    if not root.is_dir():
        raise CloudError(f"local folder not found: {root}; fix: pass an existing dataset folder")
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for name in files:
            path = Path(folder, name)
            found.append((path, path.relative_to(root).as_posix()))
    return sorted(found, key=lambda item: item[1])


def upload(
    local_dir: str | Path,
    s3_url: str,
    client: Any,
    *,
    progress: bool = True,
    concurrency: int = 16,
    multipart_threshold: int = 64 * 1024 * 1024,
    stream: TextIO | None = None,
) -> UploadReport:
    """Upload every file under `local_dir` to the folder `s3_url`, skipping unchanged ones.

    A file is unchanged when an object with its key and size already exists. `concurrency`
    files upload at once; files above `multipart_threshold` bytes go in parts. With
    `progress` a text bar is drawn on `stream` (stderr by default). Missing bucket, access
    denied or rejected credentials raise CloudError (objects already sent stay); other
    per-file errors are counted in the report.
    """
    bucket, key = parse_s3_url(s3_url)
    prefix = _folder_prefix(key)
    files = local_files(local_dir)
    remote = {obj.key: obj.size for obj in list_objects(f"s3://{bucket}/{prefix}", client)}
    todo = []
    skipped = 0
    for path, relative in files:
        size = path.stat().st_size
        if remote.get(prefix + relative) == size:
            skipped += 1
        else:
            todo.append((path, prefix + relative, size))
    bar = _ProgressBar(
        total_files=len(files),
        total_bytes=sum(size for _, _, size in todo),
        stream=(stream or sys.stderr) if progress else None,
    )
    bar.skip(skipped)
    transfer = TransferConfig(
        multipart_threshold=multipart_threshold,
        multipart_chunksize=max(multipart_threshold // 4, 8 * 1024 * 1024),
        max_concurrency=4,
    )

    def send(path: Path, object_key: str, size: int) -> int:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        client.upload_file(
            str(path), bucket, object_key,
            ExtraArgs={"ContentType": content_type},
            Config=transfer,
            Callback=bar.add_bytes,
        )
        return size

    uploaded = 0
    sent_bytes = 0
    failures: list[tuple[str, str]] = []
    fatal: CloudError | None = None
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="s3-upload") as pool:
        futures: dict[Future[int], str] = {
            pool.submit(send, path, object_key, size): object_key
            for path, object_key, size in todo
        }
        for future in as_completed(futures):
            if future.cancelled():
                continue
            object_key = futures[future]
            try:
                sent_bytes += future.result()
                uploaded += 1
                bar.file_done(ok=True)
            except botocore.exceptions.ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                bar.file_done(ok=False)
                failures.append((object_key, f"{code}: {error}"))
                if code in _FATAL_CODES and fatal is None:
                    fatal = _cloud_error(error, bucket, object_key, "s3:PutObject")
                    # Files not started yet would fail the same way; running ones finish.
                    for other in futures:
                        other.cancel()
            except (OSError, botocore.exceptions.BotoCoreError,
                    boto3.exceptions.S3UploadFailedError) as error:
                bar.file_done(ok=False)
                failures.append((object_key, str(error)))
    report = UploadReport(
        uploaded=uploaded,
        skipped=skipped,
        failed=len(failures),
        bytes_uploaded=sent_bytes,
        failures=tuple(sorted(failures)),
    )
    bar.finish(report)
    for object_key, reason in report.failures:
        log.warning("upload failed for s3://%s/%s: %s", bucket, object_key, reason)
    if fatal is not None:
        raise CloudError(f"{fatal} (stopped after: {report.summary()})")
    return report


def _human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


class _ProgressBar:
    """A one-line text bar: redrawn in place on a terminal, a line per 10% elsewhere."""

    WIDTH = 30

    def __init__(self, total_files: int, total_bytes: int, stream: TextIO | None) -> None:
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.stream = stream
        self.interactive = bool(stream is not None and stream.isatty())
        self.files_done = 0
        self.skipped = 0
        self.failed = 0
        self.bytes_done = 0
        self.last_decile = -1
        self.last_draw = 0.0
        self.lock = threading.Lock()

    def skip(self, count: int) -> None:
        with self.lock:
            self.skipped += count
            self.files_done += count
            self._draw()

    def add_bytes(self, count: int) -> None:
        with self.lock:
            self.bytes_done += count
            if self.interactive:
                self._draw()

    def file_done(self, ok: bool) -> None:
        with self.lock:
            self.files_done += 1
            self.failed += 0 if ok else 1
            self._draw()

    def _line(self) -> str:
        fraction = self.files_done / self.total_files if self.total_files else 1.0
        filled = int(fraction * self.WIDTH)
        return (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] "
            f"{self.files_done}/{self.total_files} files, "
            f"{_human_bytes(self.bytes_done)}/{_human_bytes(self.total_bytes)}"
            f" (skipped {self.skipped}, failed {self.failed})"
        )

    def _draw(self, final: bool = False) -> None:
        if self.stream is None:
            return
        if self.interactive:
            now = time.monotonic()
            if final or now - self.last_draw >= 0.1:
                self.last_draw = now
                self.stream.write("\r" + self._line())
                self.stream.flush()
            return
        decile = 10 * self.files_done // self.total_files if self.total_files else 10
        if decile > self.last_decile and not final:
            self.last_decile = decile
            self.stream.write(self._line() + "\n")

    def finish(self, report: UploadReport) -> None:
        if self.stream is None:
            return
        with self.lock:
            if self.interactive:
                self._draw(final=True)
                self.stream.write("\n")
            self.stream.write(report.summary() + "\n")
            self.stream.flush()
