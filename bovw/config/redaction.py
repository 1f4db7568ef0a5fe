"""Which settings hold secrets, and how they are masked wherever bovw shows or saves them.

Two rules, both always applied:

- Spark's: `spark.redaction.regex` (the value set under `[spark.conf]`, else Spark's
  default, below) is searched in a Spark property's key and in its value; on a match the
  value is replaced, as Spark's `Utils.redact` does for its UI and event logs. The regex
  is Java's, read here by Python's `re`: Spark's default carries `(?i)`, so it is
  case-insensitive; a user's regex is case-sensitive unless it says `(?i)` too.
- bovw's: any setting whose name says it holds a secret (secret, password, token, access
  key; any case, `.`, `_` or `-` inside "access key"), at any depth, Spark property or not.

A URL's userinfo (`scheme://user:password@host`) is a secret whatever the setting's name:
refuse_url_credentials refuses a setting that holds one (the configuration calls it on
every value), url_credentials_error a command-line word, and mask_url_credentials masks
them in any text bovw shows (error messages, masked settings).

Kept free of Spark and boto3: the configuration, the CLI and the cloud modules all use it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bovw.errors import ConfigError

__all__ = ["REDACTED", "REDACTION_REGEX_KEY", "SPARK_DEFAULT_REDACTION_REGEX", "Redactor",
           "has_url_credentials", "mask_url_credentials", "masked_repr", "redacted_settings",
           "redactor_for", "refuse_url_credentials", "url_credentials_error"]

REDACTION_REGEX_KEY = "spark.redaction.regex"
# The default of spark.redaction.regex in the newest Spark bovw supports (pyspark 4.3.0: the
# SECRET_REDACTION_PATTERN entry of org.apache.spark.internal.config). Older ones mask a
# subset (4.0.0: no "credential"), so bovw masks at least what Spark masks;
# tests/test_redaction.py checks that against the running JVM, on the oldest and newest.
SPARK_DEFAULT_REDACTION_REGEX = r"(?i)secret|password|token|access[.]?key|credential"
# Spark's own replacement text, so a masked value reads the same in bovw's files and in
# Spark's UI.
REDACTED = "*********(redacted)"

_SECRET_NAME = re.compile(r"secret|password|token|access[._-]?key", re.IGNORECASE)

_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# The userinfo ends at the authority's '@' (RFC 3986: the authority ends at / ? or #).
_USERINFO = re.compile(r"[^/?#@\s]*@")
# A password pasted as it is often holds '/' (an AWS secret key does), which ends the
# authority early: "s3a://KEY:SEC/RET@bucket/x", "https://KEY:SEC/RET@repo/m", in any
# scheme. So "user:...@" counts up to the '@' across '/': a host:port followed by a path
# holding '@' ("https://h:8080/a@b") is taken for one too, and refused (write %40 in it).
_SPLIT_USERINFO = re.compile(r"[^/@\s]*:[^@\s]*@")
MASKED_USERINFO = "***@"


def _userinfo_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the `userinfo@` of every URL in `text`, in order, not overlapping."""
    spans: list[tuple[int, int]] = []
    for match in _URL_START.finditer(text):
        if spans and match.start() < spans[-1][1]:
            continue
        found = (_SPLIT_USERINFO.match(text, match.end())
                 or _USERINFO.match(text, match.end()))
        if found:
            spans.append((match.end(), found.end()))
    return spans


def has_url_credentials(text: str) -> bool:
    """True when `text` holds a URL with a userinfo (`scheme://user:password@host`)."""
    return bool(_userinfo_spans(text))


def mask_url_credentials(text: str) -> str:
    """`text` with the userinfo of every URL in it replaced: `http://***@host/...`."""
    shown, last = [], 0
    for start, end in _userinfo_spans(text):
        shown += [text[last:start], MASKED_USERINFO]
        last = end
    return "".join(shown) + text[last:]


def url_credentials_error(where: str, value: str) -> ConfigError:
    """The one-line error for `where` (a setting's dotted key, a flag) holding `value`, a
    text with credentials in a URL; the message shows the URL masked."""
    return ConfigError(
        f"{where} holds credentials in a URL ({mask_url_credentials(value)}); bovw would "
        "save them with the settings in run.json, reports and logs, and Spark and its "
        "libraries print such URLs; fix: remove the user:password@ part and give the "
        "credentials another way (for S3: an AWS profile, --profile or s3.profile)")


def refuse_url_credentials(settings: Any, where: str = "") -> None:
    """Raise ConfigError (url_credentials_error, naming the dotted key) when any text in
    `settings` (plain mappings and lists at any depth, keys joined by '.') holds a URL with
    credentials: whatever a setting is called, such a URL would be saved and shown."""
    if isinstance(settings, Mapping):
        for key, item in settings.items():
            refuse_url_credentials(item, f"{where}.{key}" if where else str(key))
    elif isinstance(settings, list | tuple):
        for item in settings:
            refuse_url_credentials(item, where)
    elif isinstance(settings, str) and has_url_credentials(settings):
        raise url_credentials_error(where or "a setting", settings)


def _masked(value: Any) -> Any:
    return mask_url_credentials(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Redactor:
    """Both rules, with `spark_regex` as Spark's (a user's spark.redaction.regex or the
    default). Raises ValueError when the regex does not compile."""

    spark_regex: str = SPARK_DEFAULT_REDACTION_REGEX

    def __post_init__(self) -> None:
        try:
            re.compile(self.spark_regex)
        except re.error as error:
            raise ValueError(f"{REDACTION_REGEX_KEY} {self.spark_regex!r} is not a regular "
                             f"expression Python can read ({error})") from error

    @classmethod
    def for_spark_conf(cls, conf: Mapping[str, str]) -> Redactor:
        """The rules for a run whose Spark properties are `conf`."""
        return cls(conf.get(REDACTION_REGEX_KEY) or SPARK_DEFAULT_REDACTION_REGEX)

    def secret_name(self, name: str) -> bool:
        """True when a setting called `name` holds a secret."""
        return bool(_SECRET_NAME.search(name) or re.search(self.spark_regex, name))

    def secret_property(self, key: str, value: Any) -> bool:
        """True when the Spark property `key` = `value` must be masked. The regex itself is
        shown: it says which rule applied, and it always names the words it looks for."""
        if key == REDACTION_REGEX_KEY:
            return False
        return self.secret_name(key) or bool(re.search(self.spark_regex, str(value)))

    def properties(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a Spark property table with every secret value masked."""
        return {key: REDACTED if self.secret_property(key, value) else _masked(value)
                for key, value in properties.items()}

    def names(self, value: Any) -> Any:
        """A copy of `value` (mappings and lists at any depth) with the value of every key
        named like a secret masked. Only names count: the values of bovw's own settings
        (paths, profiles) are left as they are, so that two configs that differ in one
        still differ once masked; but the credentials of a URL are masked in any text."""
        if isinstance(value, Mapping):
            return {key: REDACTED if self.secret_name(str(key)) else self.names(item)
                    for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.names(item) for item in value]
        return _masked(value)

    def words(self, words: Iterable[str]) -> list[str]:
        """Command-line words with the value of every secret `key=value` word masked."""
        masked = []
        for word in words:
            key, sep, value = word.partition("=")
            masked.append(f"{key}={REDACTED}" if sep and self.secret_property(key, value)
                          else mask_url_credentials(word))
        return masked


def redacted_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a plain config dict (Config.to_dict's shape, e.g. read back from an older
    run's summary.json) with every secret masked by this module's rules: any setting
    named like a secret, and each Spark property of `spark.conf` and `emr.spark_conf` that
    spark.redaction.regex matches by key or by value (the regex the table sets, else the
    one under spark.conf, else Spark's default)."""
    run_conf = _table(data, "spark", "conf")
    masked = redactor_for(run_conf).names(data)
    for section, name in (("spark", "conf"), ("emr", "spark_conf")):
        properties = _table(data, section, name)
        if properties and isinstance(masked.get(section), dict):
            masked[section][name] = redactor_for({**run_conf, **properties}).properties(properties)
    return masked


def _table(data: Mapping[str, Any], section: str, name: str) -> Mapping[str, Any]:
    table = data.get(section)
    table = table.get(name) if isinstance(table, Mapping) else None
    return table if isinstance(table, Mapping) else {}


def redactor_for(spark_conf: Mapping[str, str], table: str = "spark.conf") -> Redactor:
    """The rules for the Spark property table `spark_conf` (named `table` in errors).
    Raises ConfigError when its spark.redaction.regex does not compile."""
    try:
        return Redactor.for_spark_conf(spark_conf)
    except ValueError as error:
        raise ConfigError(f"{table} {error}") from None


def masked_repr(settings: Any, table: str, properties: Mapping[str, str]) -> str:
    """The repr of a settings dataclass whose field `table` holds the Spark property table
    `properties`, with its secret values masked; never raises."""
    # The dataclass repr would print the secrets of the Spark property table.
    shown = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    try:
        redactor = Redactor.for_spark_conf(properties)
    except ValueError:  # not validated yet: a repr must not raise
        redactor = Redactor()
    shown[table] = redactor.properties(properties)
    return f"{type(settings).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"
