"""Copy a local dataset folder to S3 and list what is there, with boto3.

`upload` lists the destination prefix once (ListObjectsV2, paginated), skips files already
there with the same content, and uploads the rest concurrently, each file with boto3's
managed transfer (multipart above a threshold). Keys keep the path relative to the local
folder, so `Training/Apple Braeburn/0_100.jpg` stays a class folder with its space.

"The same content" is the same size and the same ETag: S3's ETag of a plain PUT is the
MD5 of the bytes, that of a multipart upload the MD5 of its parts' MD5s with "-<parts>";
the file's is computed as bovw's own upload would split it. An object whose ETag is no
MD5 (SSE-KMS encryption, another tool's part size) is uploaded again: never kept stale.
"""

from __future__ import annotations

import hashlib
import logging
import math
import mimetypes
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from bovw.cloud.credentials import credential_errors, request_error
from bovw.cloud.s3a import refuse_credentials_in_url
from bovw.cloud.upload_progress import ProgressBar, human_bytes
from bovw.config import S3Settings
from bovw.config.log_masking import install as install_log_masking
from bovw.errors import CloudError

__all__ = ["CONNECT_TIMEOUT_SECONDS", "RETRIES", "S3Object", "UploadReport", "check_reachable",
           "links_not_followed", "list_objects", "local_files", "parse_s3_url", "s3_client",
           "upload"]

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
    # What S3 says of the content (see the module's docstring); not part of the identity.
    etag: str = field(default="", compare=False)


@dataclass(frozen=True)
class UploadReport:
    """What an upload did; `failures` pairs each failed key with its reason."""

    uploaded: int
    skipped: int
    failed: int
    bytes_uploaded: int
    failures: tuple[tuple[str, str], ...] = ()
    not_followed: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: counts and bytes (and the links not followed, if any)."""
        line = (
            f"uploaded {self.uploaded}, skipped {self.skipped} unchanged, failed {self.failed}, "
            f"{human_bytes(self.bytes_uploaded)} sent"
        )
        if self.not_followed:
            line += (f"; {len(self.not_followed)} links not followed (a loop or a missing "
                     f"target): {', '.join(self.not_followed)}")
        return line


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
    install_log_masking()
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
                yield S3Object(key=item["Key"], size=int(item["Size"]),
                               etag=str(item.get("ETag", "")).strip('"'))
    except botocore.exceptions.ClientError as error:
        raise _cloud_error(error, bucket, prefix, "s3:ListBucket") from error
    except botocore.exceptions.BotoCoreError as error:
        raise request_error(error, f"listing s3://{bucket}/{prefix}") from error


def check_reachable(urls: Iterable[str], client: Any) -> None:
    """One ListObjectsV2 request (of one key) under each S3 URL of `urls`: a missing bucket,
    refused, wrong or expired credentials and an unreachable endpoint raise CloudError in
    one line, as `bovw s3 ls` says them. Spark's s3a connector reports none of them before
    its jars are there (a user fixed the jars, waited for their download, then learnt
    that the bucket's name was wrong), and then in Java's words."""
    for url in urls:
        next(iter(list_objects(url, client, page_size=1)), None)


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
    """(path, relative key) of every file under `local_dir`, sorted by key; symlinked
    folders are followed, as `bovw run` lists a local folder (links_not_followed says
    which links are not: a loop or a missing target)."""
    return _walk(local_dir)[0]


def links_not_followed(local_dir: str | Path) -> list[str]:
    """The links under `local_dir` that local_files leaves out, relative to it, sorted."""
    return _walk(local_dir)[1]


def _walk(local_dir: str | Path) -> tuple[list[tuple[Path, str]], list[str]]:
    root = Path(local_dir)
    if not root.is_dir():
        raise CloudError(f"local folder not found: {root}; fix: pass an existing dataset folder")
    found = []
    not_followed = []
    # The real folders above each folder: a link back to one of them is a loop.
    above = {str(root): frozenset({os.path.realpath(root)})}
    for folder, subfolders, files in os.walk(root, followlinks=True):
        seen = above.pop(folder)
        followed = []
        for name in sorted(subfolders):
            path = os.path.join(folder, name)
            real = os.path.realpath(path)
            if real in seen:
                not_followed.append(Path(path).relative_to(root).as_posix())
                continue
            above[path] = seen | {real}
            followed.append(name)
        subfolders[:] = followed
        for name in files:
            path = Path(folder, name)
            if not path.is_file():  # a link to nothing
                not_followed.append(path.relative_to(root).as_posix())
                continue
            found.append((path, path.relative_to(root).as_posix()))
    return sorted(found, key=lambda item: item[1]), sorted(not_followed)


def _etag(path: Path, size: int, multipart_threshold: int, part_size: int) -> str:
    """The ETag S3 gives `path` uploaded by `upload`: MD5 of the bytes, or for a multipart
    upload the MD5 of the parts' MD5s and "-<parts>" (boto3 doubles the part size until
    there are at most 10,000 parts)."""
    with path.open("rb") as file:
        if size < multipart_threshold:
            return hashlib.file_digest(file, _md5).hexdigest()
        while math.ceil(size / part_size) > 10_000:
            part_size *= 2
        digests = []
        for _part in range(math.ceil(size / part_size)):
            digest, left = _md5(), part_size
            while left > 0 and (block := file.read(min(left, 1 << 20))):
                digest.update(block)
                left -= len(block)
            digests.append(digest.digest())
    return f"{_md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def _md5(data: bytes = b"") -> Any:
    return hashlib.md5(data, usedforsecurity=False)


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

    A file is unchanged when an object with its key, size and content (its ETag: see the
    module's docstring) already exists; files in symlinked folders are uploaded too. `concurrency`
    files upload at once; files above `multipart_threshold` bytes go in parts. With
    `progress` a text bar is drawn on `stream` (stderr by default). Missing bucket, access
    denied or rejected credentials raise CloudError (objects already sent stay); other
    per-file errors are counted in the report.
    """
    bucket, key = parse_s3_url(s3_url)
    prefix = _folder_prefix(key)
    files, not_followed = _walk(local_dir)
    remote = {obj.key: obj for obj in list_objects(f"s3://{bucket}/{prefix}", client)}
    part_size = max(multipart_threshold // 4, 8 * 1024 * 1024)
    todo = []
    skipped = 0
    for path, relative in files:
        size = path.stat().st_size
        there = remote.get(prefix + relative)
        if (there is not None and there.size == size
                and there.etag == _etag(path, size, multipart_threshold, part_size)):
            skipped += 1
        else:
            todo.append((path, prefix + relative, size))
    bar = ProgressBar(
        total_files=len(files),
        total_bytes=sum(size for _, _, size in todo),
        stream=(stream or sys.stderr) if progress else None,
    )
    bar.skip(skipped)
    transfer = TransferConfig(
        multipart_threshold=multipart_threshold,
        multipart_chunksize=part_size,
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
        not_followed=tuple(not_followed),
    )
    bar.finish(report)
    for object_key, reason in report.failures:
        log.warning("upload failed for s3://%s/%s: %s", bucket, object_key, reason)
    if fatal is not None:
        raise CloudError(f"{fatal} (stopped after: {report.summary()})")
    return report
