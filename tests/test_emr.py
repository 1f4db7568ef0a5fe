"""EMR step and cluster requests, checked against what a moto EMR server records
(bovw.cloud.emr)."""

from __future__ import annotations

import json
import string
import subprocess
from pathlib import Path

import pytest

from bovw.cli import main
from bovw.cloud.emr import (
    build_step,
    cluster_request,
    create_cluster_with_step,
    submit_step,
)
from bovw.config import EmrSettings
from bovw.errors import CloudError

CONF = Path(__file__).parent.parent / "conf"

SETTINGS = EmrSettings(
    cluster_name="bovw-test",
    region="us-east-1",
    master_instance_type="m5.xlarge",
    core_instance_type="m5.2xlarge",
    core_instance_count=3,
    subnet_id="subnet-0123456789abcdef0",
    log_uri="s3://my-bucket/bovw/emr-logs/",
    bootstrap_script="s3://my-bucket/bovw/bootstrap.sh",
    package="s3://my-bucket/bovw/bovw-0.2.0-py3-none-any.whl",
    job_script="s3://my-bucket/bovw/jobs/pipeline.py",
    spark_conf={"spark.executor.memory": "8g"},
    tags={"project": "bovw"},
)

EXPECTED_ARGS = [
    "spark-submit", "--deploy-mode", "cluster",
    "--conf", "spark.pyspark.python=python3.11",
    "--conf", "spark.pyspark.driver.python=python3.11",
    "--conf", "spark.executor.memory=8g",
    "--files", "s3://my-bucket/bovw/conf/emr.toml",
    "s3://my-bucket/bovw/jobs/pipeline.py",
    "--config", "emr.toml",
    "--input", "s3a://my-bucket/fruits/Training",
    "--output", "s3a://my-bucket/runs/1",
]


def _step(**kwargs):
    return build_step(
        SETTINGS,
        config_uri="s3://my-bucket/bovw/conf/emr.toml",
        input_url="s3://my-bucket/fruits/Training",
        output_url="s3a://my-bucket/runs/1",
        **kwargs,
    )


@pytest.fixture
def emr(test_session, moto_endpoint):
    return test_session.client("emr", endpoint_url=moto_endpoint)


def test_step_is_a_cluster_mode_spark_submit_through_command_runner():
    assert _step() == {
        "Name": "bovw pipeline",
        "ActionOnFailure": "TERMINATE_CLUSTER",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": EXPECTED_ARGS},
    }


def test_step_extra_job_args_and_failure_action():
    step = _step(job_args=["--set", "vocabulary.k=200"], action_on_failure="CONTINUE")

    assert step["ActionOnFailure"] == "CONTINUE"
    assert step["HadoopJarStep"]["Args"][-2:] == ["--set", "vocabulary.k=200"]


def test_step_needs_the_job_script_on_s3():
    settings = EmrSettings(job_script=None)

    with pytest.raises(CloudError) as error:
        build_step(settings, config_uri="s3://b/c.toml", input_url="s3://b/i",
                   output_url="s3://b/o")

    # Review 4: it said only "set it in [emr]", not that --config was missing.
    assert str(error.value) == (
        "emr.job_script must be an s3:// URI (got None); fix: set it in [emr] of the config "
        "file (--config conf/emr/emr.toml is the example), or --set emr.job_script=s3://..."
    )


def test_step_config_must_be_a_file_on_s3():
    with pytest.raises(CloudError, match="config URI 's3://b/conf/' names a folder"):
        build_step(SETTINGS, config_uri="s3://b/conf/", input_url="s3://b/i",
                   output_url="s3://b/o")
    # Review 4: the fix said to set a setting, where --config-uri is a flag.
    with pytest.raises(CloudError) as error:
        build_step(SETTINGS, config_uri="c.toml", input_url="s3://b/i", output_url="s3://b/o")
    assert str(error.value) == ("--config-uri must be an s3:// URI (got 'c.toml'); fix: upload "
                                "the config file (bovw s3 upload, aws s3 cp) and give its s3:// "
                                "URI")


def test_step_config_named_as_the_job_script_is_refused():
    # Review 4: --files put both in the step's folder as pipeline.py, and --config read it.
    with pytest.raises(CloudError) as error:
        build_step(SETTINGS, config_uri="s3://my-bucket/x/pipeline.py", input_url="s3://b/i",
                   output_url="s3://b/o")
    assert str(error.value) == (
        "--config-uri s3://my-bucket/x/pipeline.py has the name of emr.job_script "
        "(pipeline.py); fix: give the config file another name (a .toml)")


def test_create_cluster_with_step_as_moto_records_it(emr):
    cluster_id = create_cluster_with_step(emr, SETTINGS, _step())

    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["Name"] == "bovw-test"
    assert cluster["ReleaseLabel"] == "emr-spark-8.0.0"
    assert cluster["LogUri"] == "s3://my-bucket/bovw/emr-logs/"
    assert cluster["AutoTerminate"] is True  # KeepJobFlowAliveWhenNoSteps False
    assert cluster["TerminationProtected"] is False
    assert cluster["ServiceRole"] == "EMR_DefaultRole"
    assert cluster["Ec2InstanceAttributes"]["IamInstanceProfile"] == "EMR_EC2_DefaultRole"
    assert cluster["Ec2InstanceAttributes"]["Ec2SubnetId"] == "subnet-0123456789abcdef0"
    assert [a["Name"] for a in cluster["Applications"]] == ["Spark"]
    assert {t["Key"]: t["Value"] for t in cluster["Tags"]} == {"project": "bovw"}

    actions = emr.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"]
    assert [(a["Name"], a["ScriptPath"], a["Args"]) for a in actions] == [
        ("install bovw", "s3://my-bucket/bovw/bootstrap.sh",
         ["s3://my-bucket/bovw/bovw-0.2.0-py3-none-any.whl", "python3.11"]),
    ]

    groups = emr.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]
    assert sorted((g["InstanceGroupType"], g["InstanceType"], g["RequestedInstanceCount"])
                  for g in groups) == [("CORE", "m5.2xlarge", 3), ("MASTER", "m5.xlarge", 1)]

    steps = emr.list_steps(ClusterId=cluster_id)["Steps"]
    assert [(s["Name"], s["ActionOnFailure"], s["Config"]["Jar"], s["Config"]["Args"])
            for s in steps] == [
        ("bovw pipeline", "TERMINATE_CLUSTER", "command-runner.jar", EXPECTED_ARGS),
    ]


def test_submit_step_to_a_running_cluster(emr):
    cluster_id = emr.run_job_flow(
        Name="long-running", ReleaseLabel="emr-spark-8.0.0",
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1,
                   "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]

    step_id = submit_step(emr, cluster_id, _step(action_on_failure="CONTINUE"))

    step = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    assert step["Config"]["Jar"] == "command-runner.jar"
    assert step["Config"]["Args"] == EXPECTED_ARGS
    assert step["ActionOnFailure"] == "CONTINUE"


def test_single_node_cluster_has_no_core_group():
    request = cluster_request(EmrSettings(**{**SETTINGS.__dict__, "core_instance_count": 0}),
                              _step())

    assert [g["InstanceRole"] for g in request["Instances"]["InstanceGroups"]] == ["MASTER"]


def test_cluster_needs_a_package_to_install():
    settings = EmrSettings(**{**SETTINGS.__dict__, "package": None})

    with pytest.raises(CloudError) as error:
        cluster_request(settings, _step())

    assert str(error.value) == (
        "emr.package is not set; fix: set it to the s3:// URI of the bovw wheel or a pip "
        "requirement such as 'bovw==0.2.0'"
    )


def test_cluster_needs_the_bootstrap_script():
    settings = EmrSettings(**{**SETTINGS.__dict__, "bootstrap_script": None})

    with pytest.raises(CloudError, match=r"emr.bootstrap_script must be an s3:// URI"):
        cluster_request(settings, _step())


def test_bootstrap_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(CONF / "emr" / "bootstrap.sh")],
                            capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr


# --- IAM policy templates ------------------------------------------------------------------

ALL_VALUES = {
    "BUCKET": "my-bucket", "INPUT_PREFIX": "fruits", "OUTPUT_PREFIX": "runs",
    "CODE_PREFIX": "bovw", "LOG_PREFIX": "bovw/emr-logs", "ACCOUNT_ID": "123456789012",
    "SERVICE_ROLE": "EMR_DefaultRole", "INSTANCE_ROLE": "EMR_EC2_DefaultRole",
}


def render_policy(template: Path, **values: str) -> dict:
    """A conf/iam template with its ${NAME} placeholders filled, as the README's sed does."""
    return json.loads(string.Template(template.read_text(encoding="utf-8")).substitute(values))


@pytest.mark.parametrize("template", sorted((CONF / "iam").glob("*.json")),
                         ids=lambda path: path.name)
def test_every_policy_template_renders_to_a_policy(template):
    policy = render_policy(template, **ALL_VALUES)

    text = json.dumps(policy)
    assert "${" not in text
    assert policy["Version"] == "2012-10-17" and policy["Statement"]
    # Nothing on the whole bucket's objects: every object ARN names a prefix.
    assert "arn:aws:s3:::my-bucket/*" not in text


def test_instance_role_policy_reads_input_and_writes_output_only():
    policy = render_policy(CONF / "iam" / "ec2-instance-role-policy.json", **ALL_VALUES)

    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["ListOnlyTheInputAndOutputPrefixes"]["Condition"] == {
        "StringLike": {"s3:prefix": ["fruits", "fruits/*", "runs", "runs/*"]}
    }
    assert statements["ReadTheInput"]["Action"] == "s3:GetObject"
    assert statements["ReadTheInput"]["Resource"] == "arn:aws:s3:::my-bucket/fruits/*"
    assert "s3:PutObject" in statements["WriteTheOutput"]["Action"]
    assert statements["WriteTheOutput"]["Resource"] == [
        "arn:aws:s3:::my-bucket/runs", "arn:aws:s3:::my-bucket/runs/*",
    ]


# --- overrides reach the cluster ------------------------------------------------------------

FORWARDED_ARGS = [
    "spark-submit", "--deploy-mode", "cluster",
    "--conf", "spark.pyspark.python=python3.11",
    "--conf", "spark.pyspark.driver.python=python3.11",
    "--conf", "spark.executor.memory=8g",
    "--conf", "spark.executor.cores=2",
    "--conf", "spark.driver.memory=6g",
    "--files", "s3://my-bucket/bovw/conf/emr.toml",
    "s3://my-bucket/bovw/jobs/pipeline.py",
    "--config", "emr.toml",
    "--input", "s3a://my-bucket/fruits/Training",
    "--output", "s3a://my-bucket/runs/1",
    "--set", "vocabulary.k=40",
    "--set", "spark.conf.spark.executor.cores=2",
    "--set", "spark.driver_memory=6g",
    "--set", "orb.nfeatures=300",
]


def test_step_forwards_every_override_to_the_job():
    step = _step(overrides={"vocabulary.k": 40, "spark.conf.spark.executor.cores": "2",
                            "spark.driver_memory": "6g", "orb.nfeatures": "300"})

    assert step["HadoopJarStep"]["Args"] == FORWARDED_ARGS


@pytest.mark.parametrize(("key", "reason"), [
    ("spark.master", "the step's spark-submit runs it on YARN, and spark-submit's master wins"),
    ("s3.profile", "the cluster reaches S3 with its instance profile (emr.instance_profile), "
                   "not an AWS CLI profile"),
    ("s3.jars_dir", "it names a folder on this machine; EMR brings its own S3 connector"),
    ("spark.jit_threshold_scale", "it applies only to a local-mode JVM that bovw starts itself"),
    ("spark.gc", "it applies only to a local-mode JVM that bovw starts itself"),
])
def test_step_refuses_settings_without_meaning_on_the_cluster(key, reason):
    with pytest.raises(CloudError) as error:
        _step(overrides={key: "x"})

    assert str(error.value) == (f"{key} cannot be set for an EMR step: {reason}; fix: leave it "
                                f"out (--set {key}=... or its shortcut flag)")


SECRET_REFUSAL = (
    "holds a secret, and EMR shows a step's arguments to everyone who can see the cluster "
    "(console, DescribeStep, step logs); fix: leave it out: the cluster reaches S3 with its "
    "instance profile (EMR_EC2_DefaultRole), and other secrets belong in a store the cluster "
    "reads (e.g. AWS Secrets Manager)")


@pytest.mark.parametrize(("overrides", "spark_conf", "what"), [
    ({"spark.conf.spark.hadoop.fs.s3a.secret.key": "s3cr3t-0042"}, {},
     "the override spark.conf.spark.hadoop.fs.s3a.secret.key"),
    ({"spark.conf.spark.driver.extraJavaOptions": "-Dx.password=s3cr3t-0042"}, {},
     "the override spark.conf.spark.driver.extraJavaOptions"),
    ({}, {"spark.hadoop.fs.s3a.access.key": "s3cr3t-0042"},
     "emr.spark_conf spark.hadoop.fs.s3a.access.key"),
])
def test_step_refuses_secrets_in_its_arguments(overrides, spark_conf, what):
    settings = EmrSettings(**{**SETTINGS.__dict__, "spark_conf": spark_conf})

    with pytest.raises(CloudError) as error:
        build_step(settings, config_uri="s3://b/c.toml", input_url="s3://b/i",
                   output_url="s3://b/o", overrides=overrides)

    assert str(error.value) == f"{what} {SECRET_REFUSAL}"


def _submit(*flags: str) -> list[str]:
    return ["emr", "submit", "--dry-run", "--config", str(CONF / "emr" / "emr.toml"),
            "--config-uri", "s3://my-bucket/bovw/conf/emr.toml",
            "--input", "s3://my-bucket/fruits/", "--output", "s3://my-bucket/runs/k40/", *flags]


def test_cli_dry_run_step_carries_every_override(capsys):
    code = main(_submit("--cluster-id", "j-TEST", "--k", "40", "--sample-size", "20000",
                        "--pca-components", "50", "--reg-param", "0.001", "--seed", "7",
                        "--set", "orb.dense_step=4", "--set", "spark.conf.spark.executor.cores=2",
                        "--profile", "submitter", "--region", "eu-west-1"))

    assert code == 0
    args = json.loads(capsys.readouterr().out)["HadoopJarStep"]["Args"]
    assert args == [
        "spark-submit", "--deploy-mode", "cluster",
        "--conf", "spark.pyspark.python=python3.11",
        "--conf", "spark.pyspark.driver.python=python3.11",
        "--conf", "spark.executor.memory=8g",
        "--conf", "spark.executor.cores=2",
        "--files", "s3://my-bucket/bovw/conf/emr.toml",
        "s3://my-bucket/bovw/jobs/pipeline.py",
        "--config", "emr.toml",
        "--input", "s3a://my-bucket/fruits/", "--output", "s3a://my-bucket/runs/k40/",
        # --profile and --region are the submitter's: not sent.
        "--set", "vocabulary.k=40", "--set", "vocabulary.sample_size=20000",
        "--set", "pca.components=50", "--set", "classifier.reg_param=0.001",
        "--set", "seed=7", "--set", "orb.dense_step=4",
        "--set", "spark.conf.spark.executor.cores=2",
    ]


def test_a_step_added_to_a_running_cluster_never_terminates_it(capsys):
    # Review 4: --cluster-id sent ActionOnFailure TERMINATE_CLUSTER (the config's, meant
    # for the cluster bovw creates): a failed step shut down a cluster bovw did not make.
    assert main(_submit("--cluster-id", "j-SHARED")) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["ActionOnFailure"] == "CONTINUE"
    assert err == ("[bovw] note: the step added to j-SHARED continues the cluster when it "
                   "fails (ActionOnFailure CONTINUE): emr.action_on_failure TERMINATE_CLUSTER "
                   "applies to a cluster bovw creates\n")
    assert main(_submit("--cluster-id", "j-SHARED", "--set",
                        "emr.action_on_failure=CANCEL_AND_WAIT")) == 0
    out, err = capsys.readouterr()
    assert (json.loads(out)["ActionOnFailure"], err) == ("CANCEL_AND_WAIT", "")
    # The cluster bovw creates for the step keeps the configured action.
    assert main(_submit()) == 0
    out, err = capsys.readouterr()
    assert [step["ActionOnFailure"] for step in json.loads(out)["Steps"]][-1] == (
        "TERMINATE_CLUSTER")
    assert main(_submit("--cluster-id", "j-SHARED", "--set",
                        "emr.action_on_failure=TERMINATE_CLUSTER")) == 2  # config error
    assert capsys.readouterr().err == (
        "bovw: config error: emr.action_on_failure TERMINATE_CLUSTER would shut down cluster "
        "j-SHARED, which bovw did not create, when the step fails; fix: CONTINUE or "
        "CANCEL_AND_WAIT, or drop --cluster-id to run on a cluster of its own\n")


@pytest.mark.parametrize(("flag", "message"), [
    ("orb.nfeatures=300", "orb.nfeatures has no effect here: it applies only with "
                          "orb.sampling=detect (here orb.sampling=dense); drop it, or change "
                          "that setting"),
    ("predict.top=2", "predict.top has no effect here"),
])
def test_cli_refuses_what_the_steps_run_would_ignore(capsys, flag, message):
    # Forwarded unchecked, the cluster's bovw run refused it after the cluster had started.
    assert main(_submit("--set", flag)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"bovw: config error: {message}")


def test_cli_dry_run_cluster_request_carries_the_overrides_too(capsys):
    assert main(_submit("--k", "40")) == 0

    request = json.loads(capsys.readouterr().out)
    assert request["Steps"][0]["HadoopJarStep"]["Args"][-2:] == ["--set", "vocabulary.k=40"]


def test_the_forwarded_overrides_give_the_job_the_submitters_config(tmp_path):
    """What the step's job parses (the same config file and the --set words) is the config
    the submitter validated."""
    from bovw.cli.command import build_parser
    from bovw.cli.common import overrides
    from bovw.config import load_config

    step = _step(overrides={"vocabulary.k": 40, "classifier.reg_param": 0.001,
                            "spark.conf.spark.executor.cores": "2"})
    args = step["HadoopJarStep"]["Args"]
    job_args = args[args.index("s3://my-bucket/bovw/jobs/pipeline.py") + 1:]
    parsed = build_parser().parse_args(["run", *job_args])
    config = load_config(CONF / "emr" / "emr.toml", overrides(parsed))

    assert config.vocabulary.k == 40
    assert config.classifier.reg_param == 0.001
    assert config.spark.conf["spark.executor.cores"] == "2"


@pytest.mark.parametrize(("flags", "message"), [
    (["--master", "local[2]"],
     "bovw: error: spark.master cannot be set for an EMR step: the step's spark-submit runs it "
     "on YARN, and spark-submit's master wins; fix: leave it out (--set spark.master=... or "
     "its shortcut flag)"),
    (["--set", "spark.conf.spark.hadoop.fs.s3a.secret.key=s3cr3t-0042"],
     f"bovw: error: the override spark.conf.spark.hadoop.fs.s3a.secret.key {SECRET_REFUSAL}"),
])
def test_cli_refuses_in_one_line(flags, message, capsys):
    assert main(_submit(*flags)) == 1

    captured = capsys.readouterr()
    assert captured.err == message + "\n"
    assert captured.out == ""
    assert "s3cr3t-0042" not in captured.err


KEYS_IN_URL = "AKIAEMRTEST0042:emr/secret+0042"


@pytest.mark.parametrize("field, url, shown", [
    ("config_uri", f"s3://{KEYS_IN_URL}@my-bucket/c.toml", "s3://***@my-bucket"),
    ("input_url", f"s3a://{KEYS_IN_URL}@my-bucket/fruits", "s3a://***@my-bucket"),
    ("job_script", f"s3://{KEYS_IN_URL}@my-bucket/job.py", "s3://***@my-bucket"),
    ("bootstrap_script", f"s3://{KEYS_IN_URL}@my-bucket/b.sh", "s3://***@my-bucket"),
    ("log_uri", f"s3://{KEYS_IN_URL}@my-bucket/logs/", "s3://***@my-bucket"),
    ("package", "bovw @ https://ann:token0042@pypi.example/bovw.whl",
     "bovw @ https://***@pypi.example"),
])
def test_no_url_with_credentials_reaches_the_cluster_request(field, url, shown):
    """EMR shows a step's arguments and the bootstrap action to everyone who can see the
    cluster: keys inside a URL are refused, and the message does not repeat them."""
    paths = {"config_uri": "s3://my-bucket/bovw/conf/emr.toml",
             "input_url": "s3://my-bucket/fruits", "output_url": "s3://my-bucket/runs/1"}
    settings = SETTINGS
    if field in paths:
        paths[field] = url
    else:
        settings = EmrSettings(**{**SETTINGS.__dict__, field: url})

    with pytest.raises(CloudError) as error:
        cluster_request(settings, build_step(settings, **paths))

    assert str(error.value).startswith(f"the path {shown}/... holds credentials before its '@'")
    assert "AKIAEMRTEST0042" not in str(error.value) and "0042" not in str(error.value)


@pytest.mark.parametrize(("paths", "message"), [
    ({"input_url": "/tmp/fs/data"},
     "--input of an EMR step must be an s3:// or s3a:// URL (got '/tmp/fs/data')"),
    ({"output_url": "runs/x"},
     "--output of an EMR step must be an s3:// or s3a:// URL (got 'runs/x')"),
    ({"output_url": "s3://my-bucket/"},
     "--output 's3://my-bucket/' is a bucket's root, and a run writes a folder of its own; "
     "fix: name a folder below it, e.g. s3://my-bucket/runs/1/"),
    ({"output_url": "s3a://my-bucket"}, "--output 's3a://my-bucket' is a bucket's root"),
])
def test_step_refuses_a_run_folder_off_s3_or_at_a_bucket_root(paths, message):
    """A cluster cannot read this machine's files, and a run's output on its own disks
    goes with the (transient) cluster; `bovw run` refuses a bucket's root too."""
    with pytest.raises(CloudError) as error:
        build_step(SETTINGS, **{"config_uri": "s3://my-bucket/bovw/conf/emr.toml",
                                "input_url": "s3://my-bucket/fruits/",
                                "output_url": "s3://my-bucket/runs/1", **paths})

    assert str(error.value).startswith(message)


@pytest.mark.parametrize("flags", [["--input", "/tmp/fs/data", "--output", "runs/x"],
                                   ["--input", "s3://bkt/f/", "--output", "s3://bkt/"]])
def test_cli_refuses_a_local_or_root_run_folder_before_printing_a_request(flags, capsys):
    argv = ["emr", "submit", "--config", str(CONF / "emr" / "emr.toml"),
            "--config-uri", "s3://bkt/c.toml", *flags, "--dry-run"]

    assert main(argv) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith("bovw: error: --")
