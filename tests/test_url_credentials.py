"""A URL's user:password@ is a secret whatever the setting or flag holding it is called:
it is refused before any work, in one line that shows the URL masked, and every error
message bovw prints masks the userinfo of any URL it quotes (bovw.config.redaction,
bovw.cli.command)."""

from __future__ import annotations

import botocore.exceptions
import pytest

from bovw.cli import cloud as cloud_commands
from bovw.cli import main
from bovw.cloud.credentials import request_error
from bovw.cloud.emr import build_step
from bovw.config import Config, ConfigError, EmrSettings, load_config
from bovw.config.redaction import (
    Redactor,
    has_url_credentials,
    mask_url_credentials,
    redacted_settings,
    refuse_url_credentials,
)
from bovw.errors import CloudError, FruitCatalogueError
from bovw.experiments.sweep import sweep_points
from bovw.predict.fruits import load_catalogue

PASSWORD = "PWX0042"
S3_SECRET = "SE/CRET+0042"
REFUSAL_TAIL = ("; bovw would save them with the settings in run.json, reports and logs, "
                "and Spark and its libraries print such URLs; fix: remove the user:password@ "
                "part and give the credentials another way (for S3: an AWS profile, "
                "--profile or s3.profile)")


@pytest.mark.parametrize("text, shown", [
    (f"http://u:{PASSWORD}@localhost:5055", "http://***@localhost:5055"),
    (f"https://deploy:{PASSWORD}@repo.example/maven", "https://***@repo.example/maven"),
    (f"https://a/m,https://deploy:{PASSWORD}@b/m", "https://a/m,https://***@b/m"),
    (f"https://{PASSWORD}@github.com/x.git", "https://***@github.com/x.git"),
    # An AWS secret key often holds '/', which ends the authority early.
    (f"s3a://AKIAX0042:{S3_SECRET}@bucket/f.toml", "s3a://***@bucket/f.toml"),
    # ... in any scheme (https, hdfs and file printed it whole; review 3).
    (f"https://AKIAX0042:{S3_SECRET}@repo/m", "https://***@repo/m"),
    (f"hdfs://AKIAX0042:{S3_SECRET}@namenode:8020/x", "hdfs://***@namenode:8020/x"),
    (f"file://AKIAX0042:{S3_SECRET}@h/x", "file://***@h/x"),
    (f'Could not connect to the endpoint URL: "http://user:{PASSWORD}@h:5999/b?x=1"',
     'Could not connect to the endpoint URL: "http://***@h:5999/b?x=1"'),
])
def test_url_credentials_are_found_and_masked(text, shown):
    assert has_url_credentials(text)
    assert mask_url_credentials(text) == shown


@pytest.mark.parametrize("text", [
    "http://localhost:5055", "s3a://bucket/photos@2x/a.jpg", "/home/ann@example/fruits",
    "fruits@home", "file:///data/a@b", "https://h/a?b=c@d", "local[2]"])
def test_text_without_url_credentials_is_left_alone(text):
    assert not has_url_credentials(text)
    assert mask_url_credentials(text) == text


@pytest.mark.parametrize("key, value", [
    ("s3.endpoint", f"http://u:{PASSWORD}@localhost:5055"),
    ("spark.conf.spark.jars.repositories", f"https://deploy:{PASSWORD}@repo.example/maven"),
    ("predict.fruits", f"s3://AKIAX0042:{S3_SECRET}@b/f.toml"),
    ("emr.package", f"bovw @ https://ann:{PASSWORD}@pypi.example/bovw.whl"),
])
def test_any_setting_with_url_credentials_is_a_config_error(key, value):
    with pytest.raises(ConfigError) as error:
        load_config(None, {key: value})

    message = str(error.value)
    assert message.startswith(f"{key} holds credentials in a URL (")
    assert message.endswith(REFUSAL_TAIL)
    assert PASSWORD not in message and S3_SECRET not in message and "AKIAX0042" not in message


def test_a_config_file_with_url_credentials_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(f'[spark.conf]\n"spark.jars.repositories" = '
                    f'"https://deploy:{PASSWORD}@repo.example/maven"\n', encoding="utf-8")

    with pytest.raises(ConfigError) as error:
        load_config(path)

    assert str(error.value) == ("spark.conf.spark.jars.repositories holds credentials in a "
                                "URL (https://***@repo.example/maven)" + REFUSAL_TAIL)


def test_refusal_walks_nested_settings():
    with pytest.raises(ConfigError, match=r"^emr\.tags\.t holds credentials"):
        refuse_url_credentials({"emr": {"tags": {"t": f"http://u:{PASSWORD}@h"}}})


def test_saved_settings_of_an_older_run_mask_url_credentials():
    # A summary.json written before the refusal held them as they were.
    data = {"s3": {"endpoint": f"http://u:{PASSWORD}@h"},
            "spark": {"conf": {"spark.jars.repositories": f"https://d:{PASSWORD}@r/m"}}}

    masked = redacted_settings(data)

    assert masked["s3"]["endpoint"] == "http://***@h"
    assert masked["spark"]["conf"]["spark.jars.repositories"] == "https://***@r/m"
    assert Redactor().words([f"--endpoint=http://u:{PASSWORD}@h"]) == ["--endpoint=http://***@h"]


def _refused(capsys, argv, created=None) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code in (1, 2)
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    for secret in (PASSWORD, S3_SECRET, "AKIAX0042"):
        assert secret not in captured.err
    if created is not None:
        assert not created.exists()
    return captured.err


def test_run_refuses_url_credentials_in_settings_before_anything(tmp_path, capsys):
    """Before: run.json, summary.json and report.html held both passwords, and Ivy printed
    the repository's URL with its password on the console."""
    out = tmp_path / "rs"
    err = _refused(capsys, [
        "run", "--input", str(tmp_path), "--output", str(out), "--k", "8",
        "--set", "spark.conf.spark.jars.repositories="
                 f"https://deploy:{PASSWORD}@repo.example/maven",
        "--set", f"s3.endpoint=http://u:{PASSWORD}@localhost:5055"], out)

    assert err == ("bovw: config error: --set spark.conf.spark.jars.repositories holds "
                   "credentials in a URL (https://***@repo.example/maven)" + REFUSAL_TAIL + "\n")


def test_sweep_refuses_url_credentials_in_a_swept_value(tmp_path, capsys):
    """Before: the password named a point's folder and a row of sweep.csv and sweep.md."""
    out = tmp_path / "s"
    err = _refused(capsys, ["sweep", "--input", str(tmp_path), "--output", str(out),
                            "--param", f"spark.conf.spark.foo=http://u:{PASSWORD}@h,x"], out)

    assert err.startswith("bovw: config error: --param spark.conf.spark.foo holds credentials "
                          "in a URL (http://***@h,x)")
    # Called directly, sweep_points refuses a session setting first, without its values.
    with pytest.raises(ConfigError) as error:
        sweep_points(Config(), [("spark.conf.spark.foo", [f"http://u:{PASSWORD}@h", "x"])])
    assert str(error.value).startswith("--param spark.conf.spark.foo: a sweep runs every "
                                       "point in one Spark session")
    assert PASSWORD not in str(error.value)


@pytest.mark.parametrize("setting", [
    f"s3.endpoint=https://AKIAX0042:{S3_SECRET}@minio:9000",
    f"spark.conf.spark.jars.repositories=https://AKIAX0042:{S3_SECRET}@repo/m",
    f"s3.endpoint=http://u:{PASSWORD}@h",
    f"spark.conf.spark.foo=http://u:{PASSWORD}@h",
    f"predict.fruits=s3://AKIAX0042:{S3_SECRET}@b/f.toml",
])
def test_emr_submit_refuses_url_credentials_before_building_the_step(capsys, setting):
    """Before: the step's arguments, which EMR shows to everyone, held them."""
    err = _refused(capsys, [
        "emr", "submit", "--config", "conf/emr/emr.toml", "--config-uri", "s3://bkt/c.toml",
        "--input", "s3://bkt/f/", "--output", "s3://bkt/r/", "--dry-run", "--set", setting])

    assert err.startswith(f"bovw: config error: --set {setting.partition('=')[0]} holds "
                          "credentials in a URL")


def test_build_step_refuses_url_credentials_in_its_overrides():
    settings = EmrSettings(job_script="s3://b/job.py")
    with pytest.raises(ConfigError) as error:
        build_step(settings, config_uri="s3://b/c.toml", input_url="s3://b/in/",
                   output_url="s3://b/out/",
                   overrides={"spark.conf.spark.foo": f"http://u:{PASSWORD}@h"})

    assert str(error.value).startswith("spark.conf.spark.foo holds credentials in a URL "
                                       "(http://***@h)")


def test_s3_refuses_an_endpoint_with_credentials(capsys):
    """Before: botocore's 'Could not connect to the endpoint URL: "http://user:...@..."'."""
    err = _refused(capsys, ["s3", "ls", "s3://bkt/x/", "--profile", "fake",
                            "--endpoint", f"http://user:{PASSWORD}@localhost:5999"])

    assert err == ("bovw: config error: --endpoint holds credentials in a URL "
                   "(http://***@localhost:5999)" + REFUSAL_TAIL + "\n")


def test_an_endpoint_from_the_environment_is_masked_in_request_errors():
    error = botocore.exceptions.EndpointConnectionError(
        endpoint_url=f"http://user:{PASSWORD}@localhost:5999/bkt")

    message = str(request_error(error, "listing s3://bkt/"))

    assert PASSWORD not in message
    assert 'endpoint URL: "http://***@localhost:5999/bkt"' in message


def test_every_printed_error_masks_url_credentials(capsys, monkeypatch):
    def fail(_args, _environ):
        raise CloudError(f"cannot reach http://u:{PASSWORD}@h/x")

    monkeypatch.setitem(cloud_commands.HANDLERS, "s3", fail)
    assert main(["s3", "ls", "s3://bkt/x/"]) == 1
    assert capsys.readouterr().err == "bovw: error: cannot reach http://***@h/x\n"
    # With --verbose, the whole trace too.
    assert main(["s3", "ls", "s3://bkt/x/", "--verbose"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "cannot reach http://***@h/x" in err
    assert PASSWORD not in err


def test_an_input_url_with_a_secret_holding_a_slash_is_refused(tmp_path, capsys):
    # Before: "cannot list hdfs://KEY:SE/CRET@namenode:8020/x", and run.json held it.
    out = tmp_path / "run"
    err = _refused(capsys, ["run", "--input", f"hdfs://AKIAX0042:{S3_SECRET}@namenode:8020/x",
                            "--output", str(out)], out)
    assert "hdfs://***@namenode:8020/x" in err


def test_export_refuses_a_catalogue_url_with_credentials(tmp_path, capsys):
    """Before: 'fruit catalogue not found: s3:/AKIAX:SECRETX@b/f.toml'."""
    err = _refused(capsys, ["export", str(tmp_path), "--out", str(tmp_path / "m.npz"),
                            "--fruits", f"s3://AKIAX0042:{S3_SECRET}@b/f.toml"])

    assert err.startswith("bovw: error: the path s3://***@b/... holds credentials")


def test_the_catalogue_error_shows_the_path_as_given_and_masked(tmp_path):
    with pytest.raises(FruitCatalogueError) as error:
        load_catalogue(f"s3://AKIAX0042:{S3_SECRET}@b/f.toml")
    assert str(error.value).startswith("fruit catalogue s3://***@b/f.toml is a URL, and bovw "
                                       "reads the catalogue from a local file")
    with pytest.raises(FruitCatalogueError) as error:
        load_catalogue("s3://b/f.toml")
    assert "s3://b/f.toml" in str(error.value)
    with pytest.raises(FruitCatalogueError, match="^fruit catalogue not found: .*nope.toml$"):
        load_catalogue(tmp_path / "nope.toml")


def test_a_flag_holding_a_url_with_credentials_inside_a_list_is_refused(tmp_path, capsys):
    err = _refused(capsys, ["run", "--input", str(tmp_path), "--output", str(tmp_path / "o"),
                            "--set", f"ingest.extensions=.jpg,http://u:{PASSWORD}@h"])

    assert "--set ingest.extensions holds credentials in a URL" in err
