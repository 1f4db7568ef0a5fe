"""Storage failures as one-line StorageErrors naming the cause and the fix: the Java
exceptions of Hadoop filesystems (local, HDFS, s3a) reached through py4j, and the OSErrors
of the local files bovw reads and writes itself."""

from __future__ import annotations

import errno
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from py4j.protocol import Py4JJavaError
from pyspark.errors.exceptions.captured import CapturedException

from bovw.errors import StorageError
from bovw.spark.jvm import JavaCause, java_causes

__all__ = ["local_failure", "storage_cause", "translated"]

_Function = TypeVar("_Function", bound=Callable[..., Any])

_WRITABLE = "choose a location you may write to (on S3: see conf/iam/ for the permissions)"
_FILE_IN_THE_WAY = "choose a path inside a folder"
_DISK_FULL = "free space, or write to another disk"


def storage_cause(causes: Sequence[JavaCause]) -> tuple[str, str] | None:
    """(cause, fix) for the deepest known storage failure among `causes`, or None."""
    for cause in reversed(causes):
        name, message = cause.simple_name, cause.message
        # Hadoop's local filesystem reports a file in the way of a folder either way.
        if name == "ParentNotDirectoryException" or (
                name == "FileAlreadyExistsException"
                and message.startswith("Destination exists and is not a directory")):
            return f"a part of the path is a file, not a folder ({message})", \
                _FILE_IN_THE_WAY
        # java.io reports the OS's reason for a file it could not open in parentheses.
        if name in ("AccessDeniedException", "AccessControlException") or (
                name == "FileNotFoundException" and message.endswith("(Permission denied)")):
            return f"permission denied ({message})", _WRITABLE
        if name == "FileNotFoundException" and message.endswith("(Read-only file system)"):
            return f"the filesystem is read-only ({message})", _WRITABLE
        if name == "IOException" and message == "No space left on device":
            return f"the disk is full ({message})", _DISK_FULL
        if name == "IOException" and message.startswith("Mkdirs failed to create"):
            return (f"the folder could not be created ({message}): no permission, a "
                    "read-only filesystem or a full disk"), _WRITABLE
        if name == "UnknownStoreException":
            return f"the bucket does not exist ({message})", "create it, or correct the URL"
        if name == "FileNotFoundException":
            return f"not found ({message})", "check the path"
        if name == "UnsupportedFileSystemException":
            return (f"Spark has no filesystem for this URL ({message})",
                    "use a local path, hdfs:// or s3a:// (s3:// is read as s3a://)")
        if name == "ClassNotFoundException" and "S3AFileSystem" in message:
            return ("Spark has no s3a connector (hadoop-aws is not on its classpath)",
                    "set s3.jars_dir to a folder holding the hadoop-aws jar of Spark's Hadoop "
                    "version and its AWS SDK bundle, or s3.packages = true where Maven Central "
                    "is reachable")
        if name == "UnknownHostException":
            return (f"unknown host {message} (no network, or a wrong host name)",
                    "check the network connection and the host in the URL (for S3: "
                    "s3.endpoint)")
    return None


def translated(doing: str, every_failure: bool = True, path_argument: str = "path"
                ) -> Callable[[_Function], _Function]:
    """Turn the Java failure of a call taking `path` (or `path_argument`) into a one-line
    StorageError.

    With `every_failure` false (calls that run a whole Spark job, whose tasks can fail for
    reasons of their own) only known storage failures are translated.
    """
    def wrap(function: _Function) -> _Function:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            # pyspark raises some Java failures as its own kinds (an unknown HDFS host as
            # IllegalArgumentException), the others as Py4JJavaError.
            except (Py4JJavaError, CapturedException) as error:
                causes = java_causes(error)
                known = storage_cause(causes)
                if known is None and not every_failure:
                    raise
                cause, fix = known or (str(causes[-1]) if causes else str(error),
                                       "check the path and the permissions on it")
                path = signature.bind(*args, **kwargs).arguments[path_argument]
                raise StorageError(f"cannot {doing} {path}: {cause}; fix: {fix}") from error
        return call  # type: ignore[return-value]
    return wrap


def local_failure(doing: str, path: str, error: OSError, making_folders: bool = False
                  ) -> StorageError:
    """The one-line StorageError for `error`, met while `doing` ("read", "write") the local
    file `path` directly rather than through Hadoop (`making_folders`: while creating the
    folders above it): the causes and fixes Hadoop's own failures get (`storage_cause`), in
    the operating system's words."""
    reason = f"{error.strerror or error}: {error.filename}" if error.filename else str(
        error.strerror or error)
    if isinstance(error, (NotADirectoryError, FileExistsError)):
        # A file where a folder of the path should be (FileExistsError: os.makedirs met it).
        cause, fix = f"a part of the path is a file, not a folder ({reason})", _FILE_IN_THE_WAY
    elif error.errno == errno.ENOSPC:
        cause, fix = f"the disk is full ({error.strerror})", _DISK_FULL
    elif making_folders:
        cause, fix = (f"the folder could not be created ({reason}): no permission, a "
                      "read-only filesystem or a full disk"), _WRITABLE
    elif isinstance(error, FileNotFoundError):
        cause, fix = f"not found ({error.strerror})", "check the path"
    elif isinstance(error, PermissionError):
        cause, fix = f"permission denied ({reason})", _WRITABLE
    elif error.errno == errno.EROFS:
        cause, fix = f"the filesystem is read-only ({reason})", _WRITABLE
    else:
        cause, fix = str(error.strerror or error), "check the path and the permissions on it"
    return StorageError(f"cannot {doing} {path}: {cause}; fix: {fix}")
