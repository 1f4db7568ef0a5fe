"""Java exceptions that reach Python through py4j, read as (class, message) pairs.

The boundaries that call the JVM (bovw.session when Spark starts, bovw.storage for every
file it reads or writes) turn them into one-line user errors from their class names; only
a few Hadoop failures without a class of their own are told apart by their message.
Importing this module does not import Spark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["JavaCause", "java_causes"]


@dataclass(frozen=True)
class JavaCause:
    """One exception of a Java cause chain: its class name and the first line of its message."""

    class_name: str
    message: str

    @property
    def simple_name(self) -> str:
        return self.class_name.rsplit(".", 1)[-1]

    def __str__(self) -> str:
        return f"{self.simple_name}: {self.message}" if self.message else self.simple_name


def java_causes(error: BaseException) -> list[JavaCause]:
    """The Java exception behind `error` and its causes, outermost first; [] when `error`
    does not come from the JVM.

    `error` is a py4j Py4JJavaError (`java_exception`) or one of pyspark's captured
    exceptions (`_origin`).
    """
    throwable: Any = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    causes: list[JavaCause] = []
    while throwable is not None and len(causes) < 20:
        message = throwable.getMessage()
        causes.append(JavaCause(
            class_name=str(throwable.getClass().getName()),
            message=str(message).strip().splitlines()[0] if message and str(message).strip()
            else "",
        ))
        throwable = throwable.getCause()
    return causes
