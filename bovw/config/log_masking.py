"""Secrets kept out of Python's log records, whoever logs them.

bovw never logs a secret itself, but the libraries it drives do once a program turns on
DEBUG logging: botocore writes every request's headers (the session token in
X-Amz-Security-Token, the access key id in Authorization) and py4j every command sent to
the JVM (Spark properties such as fs.s3a.secret.key included). `install` wraps the
logging module's record factory, so each record that is going to be handled has its
message, the traceback of the exception it carries and its stack masked before any handler
or formatter sees them: the values registered with `mask_in_logs` wherever they appear,
AWS session tokens and access key ids in request headers whatever their value (botocore
refreshes temporary credentials bovw never saw), and the user:password@ of URLs. Records
below a logger's level are never made, so they cost nothing.
"""

from __future__ import annotations

import logging
import re
import threading

from bovw.config.redaction import mask_url_credentials

__all__ = ["MASK", "install", "mask_in_logs", "masked"]

MASK = "***"

# Shorter values would mask ordinary words; real keys and tokens are 16 characters or more.
_SHORTEST_SECRET = 8
# `x-amz-security-token:VALUE` (botocore's canonical request) and
# `'X-Amz-Security-Token': b'VALUE'` (its headers dict); `Credential=AKIA.../date/...`.
_HEADER_SECRETS = re.compile(
    r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)([^'\"\s,}]+)"
    r"|(Credential=)([A-Z0-9]+)(?=/)")

# Longest first, so that a secret holding another is masked whole; kept sorted here, at
# registration, not once per log record.
_secrets: tuple[str, ...] = ()
_lock = threading.Lock()
_installed = False


def masked(text: str) -> str:
    """`text` with every registered secret and every header-borne AWS token or key id
    replaced by MASK, and the user:password@ of every URL by `***@`."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return mask_url_credentials(_HEADER_SECRETS.sub(_mask_header_value, text))


def _mask_header_value(match: re.Match) -> str:
    return (match.group(1) or match.group(3)) + MASK


def mask_in_logs(*secrets: str | None) -> None:
    """Register secret values (None and values shorter than 8 characters are ignored) and
    install the masking; call it as soon as a secret is known."""
    global _secrets
    with _lock:
        known = set(_secrets) | {s for s in secrets if s and len(s) >= _SHORTEST_SECRET}
        _secrets = tuple(sorted(known, key=len, reverse=True))
    install()


def install() -> None:
    """Wrap the logging record factory once per process (idempotent, thread-safe)."""
    global _installed
    with _lock:
        if _installed:
            return
        make_record = logging.getLogRecordFactory()

        def masking_factory(*args, **kwargs) -> logging.LogRecord:
            record = make_record(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # a malformed record: logging reports it when formatting
                return record
            safe = masked(message)
            if safe != message:
                record.msg, record.args = safe, None
            _mask_traces(record)
            return record

        logging.setLogRecordFactory(masking_factory)
        _installed = True


# Only for a record whose trace held a secret is the exception replaced by its masked
# text: logging's formatters print `exc_text` when it is set, whether or not the record
# still holds the exception, and a handler reading `exc_info` itself finds none.
_TRACE_FORMATTER = logging.Formatter()


def _mask_traces(record: logging.LogRecord) -> None:
    """Mask the traceback of the record's exception (logger.exception, exc_info=True: an
    error message may quote a secret) and its stack (stack_info=True)."""
    # A Logger hands the factory a (type, value, traceback) tuple; a record made directly
    # may hold anything, which is left to logging to report when it formats the record.
    exc_info = record.exc_info
    if isinstance(exc_info, tuple) and exc_info[0] is not None and not record.exc_text:
        try:
            trace = _TRACE_FORMATTER.formatException(exc_info)
        except Exception:
            return
        safe = masked(trace)
        if safe != trace:
            record.exc_info, record.exc_text = None, safe
    if record.stack_info:
        record.stack_info = masked(record.stack_info)
