"""Which settings are secrets and how they are masked (bovw.config.redaction, Config.to_dict)."""

from __future__ import annotations

import pytest

from bovw.config import ConfigError, load_config, redacted_settings
from bovw.config.redaction import REDACTED, SPARK_DEFAULT_REDACTION_REGEX, Redactor

PROPERTIES = {
    "spark.hadoop.fs.s3a.access.key": "AKIATESTVALUE",
    "spark.hadoop.fs.s3a.secret.key": "test-secret-value",
    "spark.hadoop.fs.s3a.session.token": "test-token-value",
    "spark.hadoop.fs.s3a.SECRET.KEY": "upper-case-key",
    "spark.hadoop.fs.s3a.aws.credentials.provider": "org.example.Provider",
    "spark.ssl.keyPassword": "pw",
    "spark.executor.extraJavaOptions": "-Dtrust.store.password=changeit",
    "spark.driver.extraJavaOptions": "-Xss4m",
    "spark.executor.memory": "8g",
    "spark.sql.shuffle.partitions": "8",
    "spark.mycorp.apiid": "corp-42",
}


def _spark_redact(spark, properties: dict[str, str], regex: str | None) -> dict[str, str]:
    """Spark's own Utils.redact on `properties`, with spark.redaction.regex = `regex`."""
    jvm = spark._jvm
    conf = jvm.org.apache.spark.SparkConf(False)
    if regex is not None:
        conf.set("spark.redaction.regex", regex)
    pairs = jvm.java.util.ArrayList()
    for key, value in properties.items():
        pairs.add(jvm.scala.Tuple2(key, value))
    redacted = jvm.org.apache.spark.util.Utils.redact(
        conf, jvm.scala.jdk.javaapi.CollectionConverters.asScala(pairs).toSeq())
    result, items = {}, redacted.iterator()
    while items.hasNext():
        pair = items.next()
        result[pair._1()] = pair._2()
    return result


def test_default_regex_covers_the_one_of_the_installed_spark(spark):
    """bovw's default masks at least what the installed Spark's default masks: every word of
    Spark's case-blind alternatives is one of bovw's (pyspark 4.0.0 lacks "credential",
    which later ones mask)."""
    config_package = getattr(spark._jvm.org.apache.spark.internal.config, "package$")
    pattern = getattr(config_package, "MODULE$").SECRET_REDACTION_PATTERN()
    sparks = pattern.defaultValueString()

    assert pattern.key() == "spark.redaction.regex"
    assert sparks.startswith("(?i)") and SPARK_DEFAULT_REDACTION_REGEX.startswith("(?i)")
    assert set(sparks[4:].split("|")) <= set(SPARK_DEFAULT_REDACTION_REGEX[4:].split("|"))


@pytest.mark.parametrize("regex", [None, "(?i)secret|mycorp", "password"])
def test_spark_properties_are_masked_as_spark_masks_them(spark, regex):
    """Wherever Spark's rule masks a value bovw does too; bovw's own rule (names) may add."""
    redactor = Redactor(regex or SPARK_DEFAULT_REDACTION_REGEX)
    ours = redactor.properties(PROPERTIES)
    # Unset, bovw's default (which covers the installed Spark's, above) is the rule.
    sparks = _spark_redact(spark, PROPERTIES, regex or SPARK_DEFAULT_REDACTION_REGEX)

    assert REDACTED == "*********(redacted)"
    for key, value in sparks.items():
        if value == REDACTED:
            assert ours[key] == REDACTED, key
        elif ours[key] == REDACTED:
            assert Redactor(r"(?!)").secret_name(key), key  # (?!) never matches: bovw's rule
    # bovw's rule keeps the usual secret names masked whatever the user's regex says.
    for key in ("spark.hadoop.fs.s3a.access.key", "spark.hadoop.fs.s3a.secret.key",
                "spark.hadoop.fs.s3a.session.token", "spark.ssl.keyPassword"):
        assert ours[key] == REDACTED, key
    assert ours["spark.executor.memory"] == "8g"
    assert ours["spark.sql.shuffle.partitions"] == "8"


def test_default_rules_by_key_and_by_value():
    masked = Redactor().properties(PROPERTIES)

    assert masked == {
        "spark.hadoop.fs.s3a.access.key": REDACTED,
        "spark.hadoop.fs.s3a.secret.key": REDACTED,
        "spark.hadoop.fs.s3a.session.token": REDACTED,
        "spark.hadoop.fs.s3a.SECRET.KEY": REDACTED,
        # Spark 4.3's default also matches "credential".
        "spark.hadoop.fs.s3a.aws.credentials.provider": REDACTED,
        "spark.ssl.keyPassword": REDACTED,
        # Matched by its value, as Spark does.
        "spark.executor.extraJavaOptions": REDACTED,
        "spark.driver.extraJavaOptions": "-Xss4m",
        "spark.executor.memory": "8g",
        "spark.sql.shuffle.partitions": "8",
        "spark.mycorp.apiid": "corp-42",
    }
    assert PROPERTIES["spark.hadoop.fs.s3a.secret.key"] == "test-secret-value"  # a copy


def test_a_user_regex_replaces_sparks_default_and_bovws_rule_stays():
    redactor = Redactor.for_spark_conf({"spark.redaction.regex": "(?i)mycorp"})
    masked = redactor.properties({**PROPERTIES, "spark.redaction.regex": "(?i)mycorp"})

    assert masked["spark.mycorp.apiid"] == REDACTED
    assert masked["spark.hadoop.fs.s3a.secret.key"] == REDACTED       # bovw's rule
    assert masked["spark.executor.extraJavaOptions"] == "-Dtrust.store.password=changeit"
    assert masked["spark.redaction.regex"] == "(?i)mycorp"             # the rule is shown


def test_names_are_masked_at_any_depth_values_of_bovw_settings_are_not():
    data = {"s3": {"profile": "token-reader", "aws_secret_access_key": "x"},
            "nested": [{"apiToken": "t", "path": "/secret/folder"}], "plain": 3}

    assert Redactor().names(data) == {
        "s3": {"profile": "token-reader", "aws_secret_access_key": REDACTED},
        "nested": [{"apiToken": REDACTED, "path": "/secret/folder"}], "plain": 3}


def test_command_line_words():
    words = ["spark-submit", "--conf", "spark.hadoop.fs.s3a.secret.key=s3cr3t",
             "--conf", "spark.executor.cores=4", "--set", "vocabulary.k=40", "job.py"]

    assert Redactor().words(words) == [
        "spark-submit", "--conf", f"spark.hadoop.fs.s3a.secret.key={REDACTED}",
        "--conf", "spark.executor.cores=4", "--set", "vocabulary.k=40", "job.py"]


# --- the configuration --------------------------------------------------------------------

def _config(**extra):
    return load_config(None, {
        "spark.conf.spark.hadoop.fs.s3a.access.key": "AKIATESTACCESSKEY",
        "spark.conf.spark.hadoop.fs.s3a.secret.key": "test/secret+value",
        "spark.conf.spark.executor.memory": "2g",
        **extra,
    })


def test_to_dict_masks_secrets_and_the_config_itself_keeps_them():
    config = _config()

    conf = config.to_dict()["spark"]["conf"]
    assert conf == {"spark.hadoop.fs.s3a.access.key": REDACTED,
                    "spark.hadoop.fs.s3a.secret.key": REDACTED,
                    "spark.executor.memory": "2g"}
    # What Spark gets is the real value, also after overrides are applied to a copy.
    assert config.replace(seed=7).spark.conf["spark.hadoop.fs.s3a.secret.key"] == (
        "test/secret+value")
    for text in (repr(config), str(config), repr(config.spark)):
        assert "AKIATESTACCESSKEY" not in text and "test/secret+value" not in text
    assert "spark.executor.memory': '2g'" in repr(config.spark)


def test_emr_spark_conf_is_masked_too(tmp_path):
    path = tmp_path / "emr.toml"
    path.write_text('[emr.spark_conf]\n"spark.hadoop.fs.s3a.secret.key" = "emr-secret"\n'
                    '"spark.executor.cores" = "4"\n', encoding="utf-8")
    config = load_config(path)

    assert config.to_dict()["emr"]["spark_conf"] == {
        "spark.hadoop.fs.s3a.secret.key": REDACTED, "spark.executor.cores": "4"}
    assert "emr-secret" not in repr(config)


def test_runs_differing_only_in_a_secret_have_the_same_saved_config():
    """A rotated key must not make a run unresumable; any other change still shows."""
    first = _config()
    rotated = _config(**{"spark.conf.spark.hadoop.fs.s3a.secret.key": "rotated"})
    other = _config(**{"vocabulary.k": 50})

    assert first.to_dict() == rotated.to_dict()
    assert first.to_dict() != other.to_dict()


def test_an_older_runs_saved_config_is_masked_when_shown():
    plain = {"spark": {"conf": {"spark.hadoop.fs.s3a.secret.key": "old-plain-secret"}},
             "emr": {"spark_conf": {"spark.a.password": "p", "spark.b": "1"}}}

    assert redacted_settings(plain) == {
        "spark": {"conf": {"spark.hadoop.fs.s3a.secret.key": REDACTED}},
        "emr": {"spark_conf": {"spark.a.password": REDACTED, "spark.b": "1"}}}


def test_a_redaction_regex_python_cannot_read_is_a_config_error():
    with pytest.raises(ConfigError) as error:
        load_config(None, {"spark.conf.spark.redaction.regex": "(?i)secret|("})

    assert str(error.value).startswith(
        "spark.conf spark.redaction.regex '(?i)secret|(' is not a regular expression Python "
        "can read (")
