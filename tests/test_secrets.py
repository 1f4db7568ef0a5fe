"""No secret given as a setting reaches any file bovw writes or any line it prints.

Secrets come in as Spark properties in a config file (`[spark.conf]`) and on the command
line (`--set spark.conf....`); a sweep (whose one point is an ordinary run, with its
report) and an exported model are made with them, then every file under the output
folders, the captured stdout/stderr and bovw's log records are searched for each secret
value, in every encoding a file may hold it in (npz members are unpacked). The other
writers of the config (compare.json, a comparison's variants) take it from the same
Config.to_dict (tests/test_redaction.py).
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pytest

from bovw.cli import main
from bovw.config.redaction import REDACTED
from bovw.image.synthetic import generate_dataset
from tests.conftest import TEST_SPARK

ACCESS_KEY = "AKIATESTACCESS0042"
SECRET_KEY = "tEsTsEcReT/value+0042"
SESSION_TOKEN = "test-session-token-0042"
JAVA_OPTION_PASSWORD = "trustpass0042"
CORP_ID = "corp-id-0042"
SECRETS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, JAVA_OPTION_PASSWORD, CORP_ID)

CONFIG = f"""
[vocabulary]
k = 8
partitions = 2

[pca]
components = 4

[spark.conf]
"spark.hadoop.fs.s3a.access.key" = "{ACCESS_KEY}"
"spark.hadoop.fs.s3a.secret.key" = "{SECRET_KEY}"
"spark.executor.extraJavaOptions" = "-Djavax.net.ssl.trustStorePassword={JAVA_OPTION_PASSWORD}"
"spark.redaction.regex" = "(?i)secret|password|token|access[.]?key|credential|mycorp"
"spark.mycorp.client" = "{CORP_ID}"
"""


def _spark_flags() -> list[str]:
    return [flag for key, value in TEST_SPARK.items() for flag in ("--set", f"{key}={value}")]


def _texts(path: Path) -> list[str]:
    """The file's content as text in each encoding it may hold the secret in; zip archives
    (the .npz model) member by member, numpy's unicode arrays being UTF-32."""
    data = path.read_bytes()
    blobs = [data]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            blobs += [archive.read(name) for name in archive.namelist()]
    return [blob.decode(encoding, errors="ignore")
            for blob in blobs for encoding in ("utf-8", "utf-16-le", "utf-32-le")]


def _leaks(root: Path) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        for text in _texts(path):
            found += [f"{path.relative_to(root)}: {secret}" for secret in SECRETS
                      if secret in text]
    return sorted(set(found))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("secret-images")
    generate_dataset(root, classes=2, train_per_class=8, test_per_class=3, seed=3)
    return root


def test_no_output_holds_a_secret(spark, images, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG, logger="bovw")
    config = tmp_path / "with-secrets.toml"
    config.write_text(CONFIG, encoding="utf-8")
    outputs = tmp_path / "outputs"
    flags = ["--config", str(config), *_spark_flags(),
             "--set", f"spark.conf.spark.hadoop.fs.s3a.session.token={SESSION_TOKEN}"]
    sweep = outputs / "sweep"

    assert main(["sweep", "--input", str(images), "--output", str(sweep), "--k", "8",
                 *flags]) == 0
    point = next((sweep / "points").iterdir())
    assert main(["export", str(point), "--out", str(outputs / "model.npz"), "--no-fruits",
                 *flags]) == 0
    printed = capsys.readouterr()

    written = {p.relative_to(outputs).as_posix() for p in outputs.rglob("*") if p.is_file()}
    for expected in ("sweep/sweep.json", "sweep/sweep.csv", "sweep/sweep.md",
                     "sweep/report.html", f"sweep/points/{point.name}/run.json",
                     f"sweep/points/{point.name}/summary.json",
                     f"sweep/points/{point.name}/metrics.json",
                     f"sweep/points/{point.name}/report.html",
                     f"sweep/points/{point.name}/_stages/descriptors.json",
                     "model.npz"):
        assert expected in written
    assert _leaks(outputs) == []
    for text in (printed.out, printed.err, caplog.text):
        assert not [secret for secret in SECRETS if secret in text]
    # Masked, not dropped: the saved config says which settings were given.
    run_json = (point / "run.json").read_text(encoding="utf-8")
    assert f'"spark.hadoop.fs.s3a.secret.key": "{REDACTED}"' in run_json
    assert f'"spark.mycorp.client": "{REDACTED}"' in run_json
    assert '"spark.redaction.regex": "(?i)secret|password|token|access[.]?key|credential|' \
           'mycorp"' in run_json


def test_a_secret_cannot_be_swept(images, tmp_path, capsys):
    code = main(["sweep", "--input", str(images), "--output", str(tmp_path / "s"),
                 "--param", f"spark.conf.spark.hadoop.fs.s3a.secret.key={SECRET_KEY},other"])

    assert code == 2
    err = capsys.readouterr().err
    assert err == ("bovw: config error: --param spark.conf.spark.hadoop.fs.s3a.secret.key "
                   "holds a secret, and a swept value names its point's folder and table row; "
                   "fix: set it once, in the config or with --set\n")
    assert not (tmp_path / "s").exists()


def test_a_run_resumes_with_a_rotated_secret(spark, images, tmp_path):
    """run.json holds the masked config, so a changed secret value is the same run."""
    from bovw.config import load_config
    from bovw.pipeline.layout import RunLayout, prepare_output

    layout = RunLayout(str(tmp_path / "run"))
    first = load_config(None, {"spark.conf.spark.hadoop.fs.s3a.secret.key": "old-value"})
    rotated = first.replace(**{"spark.conf.spark.hadoop.fs.s3a.secret.key": "new-value"})
    with prepare_output(spark, layout, {"input": "x", "config": first.to_dict()},
                        overwrite=False):
        pass

    # Refused as "a different configuration" if the rotated value counted.
    with prepare_output(spark, layout, {"input": "x", "config": rotated.to_dict()},
                        overwrite=False):
        pass

    text = (tmp_path / "run" / "run.json").read_text(encoding="utf-8")
    assert "old-value" not in text and "new-value" not in text


_SESSION_IN_A_CHILD = """
import io, json, logging, sys
# A program that logs everything at DEBUG: py4j then logs each command sent to the JVM.
log = io.StringIO()
logging.basicConfig(stream=log, level=logging.DEBUG)
from bovw.config import load_config
from bovw.spark.session import build_session
config = load_config(None, {
    "spark.master": "local[1]", "spark.driver_memory": "1g",
    "spark.conf.spark.ui.enabled": "false", "spark.conf.spark.driver.host": "127.0.0.1",
    "spark.conf.spark.driver.bindAddress": "127.0.0.1",
    "spark.conf.spark.hadoop.fs.s3a.secret.key": sys.argv[1],
    "spark.conf.spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:9"})
spark = build_session(config)
jvm = spark.sparkContext._gateway.proc.pid
with open(f"/proc/{jvm}/cmdline", "rb") as cmdline:
    words = cmdline.read().decode().split(chr(0))
hadoop = spark.sparkContext._jsc.hadoopConfiguration()
print(json.dumps({"cmdline": words, "secret": hadoop.get("fs.s3a.secret.key"),
                  "endpoint": hadoop.get("fs.s3a.endpoint"), "log": log.getvalue()}))
spark.stop()
"""


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
def test_secret_hadoop_settings_stay_off_the_jvm_command_line_and_the_logs():
    """pyspark starts its JVM with each builder property as a --conf word, which every local
    user sees in the process list: a secret goes on the live Hadoop configuration instead,
    and py4j's DEBUG lines, which carry every value sent to the JVM, show it masked."""
    import json
    import subprocess
    import sys

    from tests.cluster_fixtures import REPO_ROOT, subprocess_environment

    child = subprocess.run([sys.executable, "-c", _SESSION_IN_A_CHILD, SECRET_KEY],
                           capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
                           env=subprocess_environment())

    assert child.returncode == 0, child.stderr[-3000:]
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    assert any("org.apache.spark.deploy.SparkSubmit" in word for word in seen["cmdline"])
    assert "spark.hadoop.fs.s3a.endpoint=http://127.0.0.1:9" in seen["cmdline"]
    assert not [word for word in seen["cmdline"] if SECRET_KEY in word]
    assert seen["secret"] == SECRET_KEY
    assert seen["endpoint"] == "http://127.0.0.1:9"
    # Nor in the DEBUG log, where py4j wrote the command that set it (masked).
    assert "Command to send" in seen["log"] and "fs.s3a.secret.key" in seen["log"]
    assert SECRET_KEY not in seen["log"]


CREDENTIAL_URL_CASES = [
    ("run", "--input", "s3a://{key}:{secret}@bucket/fruits", "s3a://***@bucket"),
    ("run", "--output", "s3://{key}:{secret}@bucket/runs/a", "s3://***@bucket"),
    ("run", "--descriptors-from", "s3n://{key}:{secret}@bucket/runs/a/descriptors",
     "s3n://***@bucket"),
    ("sweep", "--input", "hdfs://ann:{key}@namenode:8020/fruits", "hdfs://***@namenode:8020"),
    ("compare", "--output", "s3a://{key}@bucket/c", "s3a://***@bucket"),
    # No '@' at all: still not a bucket name, which never holds ':'.
    ("run", "--input", "s3://{key}:{secret}", "s3://***@..."),
]


@pytest.mark.parametrize("command, flag, url, shown", CREDENTIAL_URL_CASES)
def test_a_path_with_credentials_in_it_is_refused_without_repeating_them(
        images, tmp_path, capsys, command, flag, url, shown):
    """Old Hadoop took S3 keys in the URL; bovw writes its paths into run.json, reports and
    logs, and Spark prints them in its errors, so such a path is refused before anything."""
    url = url.format(key=ACCESS_KEY, secret=SECRET_KEY)
    paths = {"--input": str(images), "--output": str(tmp_path / "out"), flag: url}
    argv = [command, *(item for pair in paths.items() for item in pair), "--k", "8"]

    assert main(argv) == 1

    err = capsys.readouterr().err
    assert err == (f"bovw: error: the path {shown}/... holds credentials before its '@'; bovw "
                   "would save them with the path in run.json, reports and logs; fix: remove "
                   "them and give an AWS profile (--profile, s3.profile) or run with an "
                   "instance role\n")
    assert not (tmp_path / "out").exists()


def test_the_s3_upload_refuses_a_url_with_credentials(tmp_path, capsys):
    assert main(["s3", "upload", str(tmp_path), f"s3://{ACCESS_KEY}:{SECRET_KEY}@bucket/x"]
                ) == 1
    err = capsys.readouterr().err
    assert "the path s3://***@bucket/... holds credentials" in err
    assert ACCESS_KEY not in err and SECRET_KEY not in err
