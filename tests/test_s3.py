"""Upload and listing against a local moto S3 server through the real boto3 code (bovw.cloud.s3)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import botocore.exceptions
import pytest
from botocore.stub import Stubber

from bovw.cloud.s3 import S3Object, UploadReport, list_objects, parse_s3_url, upload
from bovw.errors import CloudError


def _dataset(root: Path) -> dict[str, bytes]:
    """A small Fruits-360-like tree; class folders have spaces. Returns key -> content."""
    files = {
        "Training/Apple Braeburn/0_100.jpg": b"a" * 100,
        "Training/Apple Braeburn/1_100.jpg": b"b" * 150,
        "Training/Banana Lady Finger/0_100.jpg": b"c" * 200,
        "Test/Apple Braeburn/3_100.jpg": b"d" * 120,
        "Test/Banana Lady Finger/4_100.jpg": b"e" * 80,
    }
    for key, content in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def _upload(local: Path, url: str, client, **kwargs) -> tuple[UploadReport, str]:
    stream = io.StringIO()
    report = upload(local, url, client, stream=stream, concurrency=4, **kwargs)
    return report, stream.getvalue()


def test_upload_keeps_relative_keys_and_lists_them(tmp_path, s3, bucket):
    files = _dataset(tmp_path / "fruits")

    report, _ = _upload(tmp_path / "fruits", f"s3://{bucket}/fruits", s3)

    assert report == UploadReport(uploaded=5, skipped=0, failed=0, bytes_uploaded=650)
    assert list(list_objects(f"s3://{bucket}/fruits", s3)) == [
        S3Object(key=f"fruits/{key}", size=len(content))
        for key, content in sorted(files.items())
    ]
    body = s3.get_object(Bucket=bucket, Key="fruits/Training/Apple Braeburn/1_100.jpg")
    assert body["Body"].read() == b"b" * 150
    assert body["ContentType"] == "image/jpeg"


def test_second_upload_skips_everything(tmp_path, s3, bucket):
    _dataset(tmp_path / "fruits")
    _upload(tmp_path / "fruits", f"s3://{bucket}/fruits/", s3)

    report, output = _upload(tmp_path / "fruits", f"s3a://{bucket}/fruits/", s3)

    assert report == UploadReport(uploaded=0, skipped=5, failed=0, bytes_uploaded=0)
    assert output.splitlines()[-1] == "uploaded 0, skipped 5 unchanged, failed 0, 0 B sent"


def test_a_file_whose_size_changed_is_uploaded_again(tmp_path, s3, bucket):
    _dataset(tmp_path / "fruits")
    _upload(tmp_path / "fruits", f"s3://{bucket}/fruits", s3)
    (tmp_path / "fruits" / "Test" / "Apple Braeburn" / "3_100.jpg").write_bytes(b"z" * 999)

    report, _ = _upload(tmp_path / "fruits", f"s3://{bucket}/fruits", s3)

    assert report == UploadReport(uploaded=1, skipped=4, failed=0, bytes_uploaded=999)
    sizes = {obj.key: obj.size for obj in list_objects(f"s3://{bucket}/fruits", s3)}
    assert sizes["fruits/Test/Apple Braeburn/3_100.jpg"] == 999


def test_a_file_with_new_bytes_of_the_same_size_is_uploaded_again(tmp_path, s3, bucket):
    # Sizes alone called it unchanged, and S3 kept the old bytes.
    _dataset(tmp_path / "fruits")
    _upload(tmp_path / "fruits", f"s3://{bucket}/fruits", s3)
    (tmp_path / "fruits" / "Test" / "Apple Braeburn" / "3_100.jpg").write_bytes(b"y" * 120)

    report, _ = _upload(tmp_path / "fruits", f"s3://{bucket}/fruits", s3)

    assert (report.uploaded, report.skipped) == (1, 4)
    body = s3.get_object(Bucket=bucket, Key="fruits/Test/Apple Braeburn/3_100.jpg")["Body"]
    assert body.read() == b"y" * 120


def test_an_unchanged_multipart_file_is_skipped_and_a_changed_one_sent(tmp_path, s3, bucket):
    big = tmp_path / "big" / "Training" / "Kiwi" / "huge.png"
    big.parent.mkdir(parents=True)
    content = bytearray(bytes(range(256)) * (36 * 1024 * 4))  # 36 MiB: 8 MiB parts
    big.write_bytes(content)
    kwargs = {"multipart_threshold": 5 * 1024 * 1024}
    _upload(tmp_path / "big", f"s3://{bucket}/big", s3, **kwargs)
    head = s3.head_object(Bucket=bucket, Key="big/Training/Kiwi/huge.png")
    assert head["ETag"].strip('"').endswith("-5")

    again, _ = _upload(tmp_path / "big", f"s3://{bucket}/big", s3, **kwargs)
    content[-1] ^= 0xFF  # one byte of the last part
    big.write_bytes(content)
    changed, _ = _upload(tmp_path / "big", f"s3://{bucket}/big", s3, **kwargs)

    assert (again.uploaded, again.skipped) == (0, 1)
    assert (changed.uploaded, changed.skipped) == (1, 0)
    body = s3.get_object(Bucket=bucket, Key="big/Training/Kiwi/huge.png")["Body"].read()
    assert body == bytes(content)


def test_an_object_whose_etag_is_no_md5_is_uploaded_again(tmp_path, s3, bucket):
    # An SSE-KMS object's ETag, say: the content cannot be compared, so it is sent.
    _dataset(tmp_path / "fruits")
    _upload(tmp_path / "fruits", f"s3://{bucket}/fruits", s3)
    key = "fruits/Test/Apple Braeburn/3_100.jpg"
    listed = [S3Object(o.key, o.size, "0" * 32 if o.key == key else o.etag)
              for o in list_objects(f"s3://{bucket}/fruits", s3)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bovw.cloud.s3.list_objects", lambda *_args, **_kw: iter(listed))
        report, _ = _upload(tmp_path / "fruits", f"s3://{bucket}/fruits", s3)

    assert (report.uploaded, report.skipped) == (1, 4)


def test_symlinked_class_folders_are_uploaded_and_loops_named(tmp_path, s3, bucket):
    # `bovw run` follows a symlinked class folder: the upload left it out, silently.
    _dataset(tmp_path / "fruits")
    elsewhere = tmp_path / "elsewhere" / "Cherry"
    elsewhere.mkdir(parents=True)
    (elsewhere / "0_100.jpg").write_bytes(b"f" * 90)
    (tmp_path / "fruits" / "Training" / "Cherry").symlink_to(elsewhere)
    (elsewhere / "back").symlink_to(tmp_path / "fruits")  # a loop
    (tmp_path / "fruits" / "Training" / "gone.jpg").symlink_to(tmp_path / "nothing.jpg")

    report, output = _upload(tmp_path / "fruits", f"s3://{bucket}/fruits", s3)

    keys = {obj.key for obj in list_objects(f"s3://{bucket}/fruits", s3)}
    assert "fruits/Training/Cherry/0_100.jpg" in keys
    assert len(keys) == 6 and report.uploaded == 6
    assert report.not_followed == ("Training/Cherry/back", "Training/gone.jpg")
    assert output.splitlines()[-1].endswith(
        "; 2 links not followed (a loop or a missing target): Training/Cherry/back, "
        "Training/gone.jpg")


def test_progress_lines_and_final_count(tmp_path, s3, bucket):
    _dataset(tmp_path / "fruits")

    _, output = _upload(tmp_path / "fruits", f"s3://{bucket}/fruits", s3)

    lines = output.splitlines()
    assert lines[0] == "[..............................] 0/5 files, 0 B/650 B (skipped 0, failed 0)"
    assert lines[-2] == (
        "[##############################] 5/5 files, 650 B/650 B (skipped 0, failed 0)"
    )
    assert lines[-1] == "uploaded 5, skipped 0 unchanged, failed 0, 650 B sent"
    # One line per file here (each file is a tenth or more of five), nothing else.
    assert len(lines) == 7


def test_progress_is_reported_while_files_are_still_uploading(tmp_path, s3, bucket):
    _dataset(tmp_path / "fruits")
    stream = io.StringIO()
    saw_progress = threading.Event()

    class HoldsTheLastFile:
        """Uploads one file only once the bar shows the four others as done."""

        def get_paginator(self, name):
            return s3.get_paginator(name)

        def upload_file(self, filename, bucket_name, key, **kwargs):
            if key.endswith("Training/Banana Lady Finger/0_100.jpg"):
                for _ in range(100):
                    if "4/5 files" in stream.getvalue():
                        saw_progress.set()
                        break
                    time.sleep(0.05)
            return s3.upload_file(filename, bucket_name, key, **kwargs)

    report = upload(tmp_path / "fruits", f"s3://{bucket}/fruits", HoldsTheLastFile(),
                    stream=stream, concurrency=5)

    assert report.uploaded == 5
    assert saw_progress.is_set()


def test_progress_redraws_in_place_on_a_terminal(tmp_path, s3, bucket):
    _dataset(tmp_path / "fruits")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    upload(tmp_path / "fruits", f"s3://{bucket}/fruits", s3, stream=terminal)

    output = terminal.getvalue()
    assert output.startswith("\r[")
    assert output.endswith(
        "\r[##############################] 5/5 files, 650 B/650 B (skipped 0, failed 0)\n"
        "uploaded 5, skipped 0 unchanged, failed 0, 650 B sent\n"
    )


def test_no_progress_writes_nothing(tmp_path, s3, bucket):
    _dataset(tmp_path / "fruits")
    stream = io.StringIO()

    report = upload(tmp_path / "fruits", f"s3://{bucket}/x", s3, progress=False, stream=stream)

    assert report.uploaded == 5
    assert stream.getvalue() == ""


def test_large_file_goes_in_parts(tmp_path, s3, bucket):
    big = tmp_path / "big" / "Training" / "Kiwi" / "huge.png"
    big.parent.mkdir(parents=True)
    big.write_bytes(bytes(range(256)) * (6 * 1024 * 4))  # 6 MiB

    report, _ = _upload(tmp_path / "big", f"s3://{bucket}/big", s3,
                        multipart_threshold=5 * 1024 * 1024)

    assert report.uploaded == 1
    head = s3.head_object(Bucket=bucket, Key="big/Training/Kiwi/huge.png")
    assert head["ContentLength"] == 6 * 1024 * 1024
    # A multipart ETag ends in -<parts>: one 8 MiB part here, where a plain PUT has none.
    assert head["ETag"].strip('"').endswith("-1")


def test_listing_a_prefix_does_not_include_sibling_prefixes(tmp_path, s3, bucket):
    s3.put_object(Bucket=bucket, Key="data/a.jpg", Body=b"1")
    s3.put_object(Bucket=bucket, Key="data2/b.jpg", Body=b"22")

    assert list(list_objects(f"s3://{bucket}/data", s3)) == [S3Object("data/a.jpg", 1)]
    assert [o.key for o in list_objects(f"s3://{bucket}", s3)] == ["data/a.jpg", "data2/b.jpg"]


def test_listing_follows_every_page(s3, bucket):
    for index in range(5):
        s3.put_object(Bucket=bucket, Key=f"many/{index}.jpg", Body=b"x" * index)
    requests = []
    s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: requests.append(1))

    listed = list(list_objects(f"s3://{bucket}/many", s3, page_size=2))

    assert listed == [S3Object(f"many/{index}.jpg", index) for index in range(5)]
    assert len(requests) == 3


def test_missing_bucket(tmp_path, s3):
    _dataset(tmp_path / "fruits")

    for action in (lambda: list(list_objects("s3://bovw-no-such-bucket/x", s3)),
                   lambda: _upload(tmp_path / "fruits", "s3://bovw-no-such-bucket/x", s3)):
        with pytest.raises(CloudError) as error:
            action()
        assert str(error.value) == (
            "bucket 'bovw-no-such-bucket' does not exist; fix: create it "
            "(`aws s3 mb s3://bovw-no-such-bucket`) or correct the URL"
        )


def test_listing_access_denied(s3):
    with Stubber(s3) as stubber:
        stubber.add_client_error("list_objects_v2", service_error_code="AccessDenied",
                                 http_status_code=403)
        with pytest.raises(CloudError) as error:
            list(list_objects("s3://locked-bucket/fruits", s3))

    assert str(error.value) == (
        "access denied to s3://locked-bucket/fruits/; fix: grant s3:ListBucket on it to the "
        "identity in use (see conf/iam/)"
    )


class _FailingClient:
    """The real client, except that uploads of keys containing `marker` fail with `code`."""

    def __init__(self, client, marker: str, code: str) -> None:
        self.client, self.marker, self.code = client, marker, code

    def get_paginator(self, name):
        return self.client.get_paginator(name)

    def upload_file(self, filename, bucket, key, **kwargs):
        if self.marker in key:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": self.code, "Message": "test failure"}}, "PutObject"
            )
        return self.client.upload_file(filename, bucket, key, **kwargs)


def test_a_failing_file_is_counted_and_the_rest_uploaded(tmp_path, s3, bucket):
    _dataset(tmp_path / "fruits")
    client = _FailingClient(s3, marker="Banana", code="InternalError")

    report, output = _upload(tmp_path / "fruits", f"s3://{bucket}/fruits", client)

    assert (report.uploaded, report.skipped, report.failed) == (3, 0, 2)
    assert [key for key, _ in report.failures] == [
        "fruits/Test/Banana Lady Finger/4_100.jpg",
        "fruits/Training/Banana Lady Finger/0_100.jpg",
    ]
    assert output.splitlines()[-1] == "uploaded 3, skipped 0 unchanged, failed 2, 370 B sent"


def test_access_denied_on_upload_stops_with_a_one_line_error(tmp_path, s3, bucket):
    _dataset(tmp_path / "fruits")
    client = _FailingClient(s3, marker="fruits/", code="AccessDenied")

    with pytest.raises(CloudError) as error:
        _upload(tmp_path / "fruits", f"s3://{bucket}/fruits", client)

    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"access denied to s3://{bucket}/fruits/")
    assert "fix: grant s3:PutObject on it to the identity in use (see conf/iam/)" in message
    assert "(stopped after: uploaded 0, skipped 0 unchanged, failed " in message


def test_missing_local_folder(tmp_path, s3, bucket):
    with pytest.raises(CloudError) as error:
        upload(tmp_path / "nope", f"s3://{bucket}/x", s3)

    assert str(error.value) == (
        f"local folder not found: {tmp_path / 'nope'}; fix: pass an existing dataset folder"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://b/a b/c", ("b", "a b/c")),
        ("s3a://b", ("b", "")),
        ("s3n://b/", ("b", "")),
    ],
)
def test_parse_s3_url(url, expected):
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/local/path", "not an S3 URL: '/local/path'; fix: use s3://bucket/prefix"),
        ("gs://b/x", "not an S3 URL: 'gs://b/x'; fix: use s3://bucket/prefix"),
        ("s3:///x", "no bucket in S3 URL 's3:///x'; fix: use s3://bucket/prefix"),
    ],
)
def test_bad_s3_urls(url, message):
    with pytest.raises(CloudError) as error:
        parse_s3_url(url)

    assert str(error.value) == message
