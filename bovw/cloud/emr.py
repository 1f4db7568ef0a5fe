"""Run the pipeline on Amazon EMR: a spark-submit step, on a running or a new cluster.

The step runs `spark-submit` through EMR's command-runner.jar. The run configuration
(a TOML file on S3) is shipped to the driver with `--files` and named by its file name,
because in cluster deploy mode the driver starts on a core node with its own working folder.
The bovw package itself is installed on every node by conf/emr/bootstrap.sh.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
import botocore.exceptions

from bovw.cloud.credentials import credential_errors, request_error
from bovw.cloud.s3a import normalise_s3_url, refuse_credentials_in_url
from bovw.config import EmrSettings
from bovw.config.log_masking import install as install_log_masking
from bovw.config.redaction import Redactor, refuse_url_credentials
from bovw.errors import CloudError

__all__ = ["COMMAND_RUNNER", "build_step", "cluster_request", "create_cluster_with_step",
           "emr_client", "submit_step"]

log = logging.getLogger(__name__)

COMMAND_RUNNER = "command-runner.jar"

# Settings that cannot be sent to a step, and why: on the cluster they would be ignored or
# would break the run.
_NOT_FOR_EMR = {
    "spark.master": "the step's spark-submit runs it on YARN, and spark-submit's master wins",
    "s3.profile": "the cluster reaches S3 with its instance profile (emr.instance_profile), "
                  "not an AWS CLI profile",
    "s3.jars_dir": "it names a folder on this machine; EMR brings its own S3 connector",
    "spark.class_archive_dir": "it applies only to a local-mode JVM that bovw starts itself",
    "spark.jit_threshold_scale": "it applies only to a local-mode JVM that bovw starts itself",
    "spark.gc": "it applies only to a local-mode JVM that bovw starts itself",
}
# bovw settings that spark-submit must apply: the driver it starts cannot change them.
_SUBMIT_PROPERTIES = {"spark.driver_memory": "spark.driver.memory"}
_SPARK_CONF = "spark.conf."


def emr_client(settings: EmrSettings, session: boto3.Session | None = None) -> Any:
    """An EMR client for emr.region (or the session's region). Raises CloudError."""
    install_log_masking()
    session = session or boto3.Session()
    try:
        with credential_errors(session):
            return session.client("emr", region_name=settings.region)
    except botocore.exceptions.BotoCoreError as error:
        raise request_error(error, "the EMR API") from error


def _require_s3(value: str | None, name: str, fix: str = "") -> str:
    """`value` when it is an s3:// URI, else CloudError naming the `name` setting (or the
    `fix` when it is not one: a flag)."""
    if value:
        # Before the URI is repeated in any message: EMR shows it to everyone, too.
        refuse_credentials_in_url(value)
    if not value or not value.startswith("s3://"):
        fix = fix or (f"set it in [emr] of the config file (--config conf/emr/emr.toml "
                      f"is the example), or --set {name}=s3://...")
        raise CloudError(f"{name} must be an s3:// URI (got {value!r}); fix: {fix}")
    return value


def _require_s3_folder(url: str, name: str, *, below_root: bool) -> None:
    """Refuse a run `url` that is not on S3: the step runs on the cluster, whose local disks
    (and, on a cluster bovw creates, everything on them) go when it ends."""
    refuse_credentials_in_url(url)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("s3", "s3a", "s3n"):
        raise CloudError(
            f"--{name} of an EMR step must be an s3:// or s3a:// URL (got {url!r}): the step "
            "runs on the cluster, which cannot read this machine's files and whose own disks "
            "go with it; fix: upload the dataset (`bovw s3 upload`) and give s3:// URLs")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise CloudError(f"--{name} {url!r} names no bucket; fix: use s3://bucket/folder/")
    if below_root and not key.strip("/"):
        raise CloudError(f"--{name} {url!r} is a bucket's root, and a run writes a folder "
                         f"of its own; fix: name a folder below it, e.g. {scheme}://{bucket}"
                         "/runs/1/")


def build_step(
    settings: EmrSettings,
    *,
    config_uri: str,
    input_url: str,
    output_url: str,
    overrides: Mapping[str, Any] | None = None,
    job_args: Sequence[str] = (),
    name: str = "bovw pipeline",
    action_on_failure: str | None = None,
    redactor: Redactor | None = None,
) -> dict[str, Any]:
    """An EMR step running `spark-submit ... <emr.job_script> --config ... --input ... --output`.

    `config_uri` is the s3:// URI of the run's TOML config; `input_url` and `output_url`
    (s3:// or s3a://, the output a folder below the bucket's root, else CloudError) are
    given to the job as s3a:// URLs. `overrides` (dotted key -> value, as from the
    command line) go to the job as `--set key=value`, in order, so the cluster runs the
    configuration the submitter asked for; those spark-submit itself must apply
    (`spark.conf.*`, `spark.driver_memory`) are also given to it as `--conf`. `job_args`
    are appended to the job's arguments. `action_on_failure` defaults to
    emr.action_on_failure.

    EMR shows a step's arguments to anyone who may see the cluster, so a secret (by
    `redactor`'s rules, default: Spark's and bovw's) in an override or in emr.spark_conf,
    and any setting without meaning on the cluster, raise CloudError naming the fix.
    """
    redactor = redactor or Redactor()
    overrides = dict(overrides or {})
    _require_s3_folder(input_url, "input", below_root=False)
    _require_s3_folder(output_url, "output", below_root=True)
    # EMR shows the step's arguments: no override may carry a URL's user:password@ either.
    refuse_url_credentials({key: str(value) for key, value in overrides.items()})
    refuse_url_credentials(dict(settings.spark_conf), "emr.spark_conf")
    script = _require_s3(settings.job_script, "emr.job_script")
    config_uri = _require_s3(config_uri, "--config-uri", fix="upload the config file "
                             "(bovw s3 upload, aws s3 cp) and give its s3:// URI")
    config_name = config_uri.rsplit("/", 1)[-1]
    if not config_name:
        raise CloudError(f"config URI {config_uri!r} names a folder; fix: name the .toml file")
    if config_name == script.rsplit("/", 1)[-1]:
        # --files puts both in the step's working folder under their names: one would be
        # read for the other.
        raise CloudError(f"--config-uri {config_uri} has the name of emr.job_script "
                         f"({config_name}); fix: give the config file another name (a .toml)")
    for key, value in settings.spark_conf.items():
        if redactor.secret_property(key, value):
            raise _secret_argument(f"emr.spark_conf {key}", settings)
    for key, value in overrides.items():
        if key in _NOT_FOR_EMR:
            raise CloudError(f"{key} cannot be set for an EMR step: {_NOT_FOR_EMR[key]}; "
                             f"fix: leave it out (--set {key}=... or its shortcut flag)")
        if (redactor.secret_property(key.removeprefix(_SPARK_CONF), value)
                if key.startswith(_SPARK_CONF) else redactor.secret_name(key)):
            raise _secret_argument(f"the override {key}", settings)
    submit = ["spark-submit", "--deploy-mode", settings.deploy_mode]
    spark_conf = {
        "spark.pyspark.python": settings.python,
        "spark.pyspark.driver.python": settings.python,
        **settings.spark_conf,
    }
    for key, value in overrides.items():
        if key.startswith(_SPARK_CONF):
            spark_conf[key.removeprefix(_SPARK_CONF)] = value
        elif key in _SUBMIT_PROPERTIES:
            spark_conf[_SUBMIT_PROPERTIES[key]] = value
    for key, value in spark_conf.items():
        submit += ["--conf", f"{key}={value}"]
    submit += ["--files", config_uri, script, "--config", config_name]
    submit += ["--input", normalise_s3_url(input_url), "--output", normalise_s3_url(output_url)]
    for key, value in overrides.items():
        submit += ["--set", f"{key}={value}"]
    submit += list(job_args)
    return {
        "Name": name,
        "ActionOnFailure": action_on_failure or settings.action_on_failure,
        "HadoopJarStep": {"Jar": COMMAND_RUNNER, "Args": submit},
    }


def _secret_argument(what: str, settings: EmrSettings) -> CloudError:
    return CloudError(
        f"{what} holds a secret, and EMR shows a step's arguments to everyone who can see "
        "the cluster (console, DescribeStep, step logs); fix: leave it out: the cluster "
        f"reaches S3 with its instance profile ({settings.instance_profile}), and other "
        "secrets belong in a store the cluster reads (e.g. AWS Secrets Manager)"
    )


def submit_step(emr_client: Any, cluster_id: str, step: Mapping[str, Any]) -> str:
    """Add `step` to the running cluster `cluster_id`; returns the step id."""
    log.info("submitting step to %s: %s", cluster_id,
             " ".join(Redactor().words(step["HadoopJarStep"]["Args"])))
    doing = f"adding a step to cluster {cluster_id}"
    try:
        response = emr_client.add_job_flow_steps(JobFlowId=cluster_id, Steps=[dict(step)])
    except botocore.exceptions.ClientError as error:
        raise _emr_error(error, doing) from error
    except botocore.exceptions.BotoCoreError as error:
        raise request_error(error, doing) from error
    return response["StepIds"][0]


def cluster_request(settings: EmrSettings, step: Mapping[str, Any]) -> dict[str, Any]:
    """The RunJobFlow request for a cluster that runs `step` and then terminates."""
    bootstrap = _require_s3(settings.bootstrap_script, "emr.bootstrap_script")
    for url in (settings.package, settings.log_uri):
        if url:
            refuse_credentials_in_url(url)  # a private index's token, say
    if not settings.package:
        raise CloudError(
            "emr.package is not set; fix: set it to the s3:// URI of the bovw wheel "
            "or a pip requirement such as 'bovw==0.2.0'"
        )
    instances: dict[str, Any] = {
        "InstanceGroups": [
            {
                "Name": "master",
                "Market": "ON_DEMAND",
                "InstanceRole": "MASTER",
                "InstanceType": settings.master_instance_type,
                "InstanceCount": 1,
            },
        ],
        # The cluster ends when its steps have run, so an idle cluster costs nothing.
        "KeepJobFlowAliveWhenNoSteps": False,
        "TerminationProtected": False,
    }
    if settings.core_instance_count > 0:
        instances["InstanceGroups"].append(
            {
                "Name": "core",
                "Market": "ON_DEMAND",
                "InstanceRole": "CORE",
                "InstanceType": settings.core_instance_type,
                "InstanceCount": settings.core_instance_count,
            }
        )
    if settings.subnet_id:
        instances["Ec2SubnetId"] = settings.subnet_id
    if settings.ec2_key_name:
        instances["Ec2KeyName"] = settings.ec2_key_name
    request: dict[str, Any] = {
        "Name": settings.cluster_name,
        "ReleaseLabel": settings.release_label,
        "Applications": [{"Name": name} for name in settings.applications],
        "Instances": instances,
        "BootstrapActions": [
            {
                "Name": "install bovw",
                "ScriptBootstrapAction": {
                    "Path": bootstrap,
                    "Args": [settings.package, settings.python],
                },
            }
        ],
        "Steps": [dict(step)],
        "ServiceRole": settings.service_role,
        "JobFlowRole": settings.instance_profile,
        "VisibleToAllUsers": True,
        "Tags": [{"Key": key, "Value": value} for key, value in settings.tags.items()],
    }
    if settings.log_uri:
        request["LogUri"] = settings.log_uri
    return request


def create_cluster_with_step(
    emr_client: Any, settings: EmrSettings, step: Mapping[str, Any]
) -> str:
    """Start a cluster that installs bovw, runs `step` and terminates; returns its id."""
    request = cluster_request(settings, step)
    log.info("creating EMR cluster %r (%s) with step: %s", settings.cluster_name,
             settings.release_label, " ".join(Redactor().words(step["HadoopJarStep"]["Args"])))
    try:
        response = emr_client.run_job_flow(**request)
    except botocore.exceptions.ClientError as error:
        raise _emr_error(error, "creating the EMR cluster") from error
    except botocore.exceptions.BotoCoreError as error:
        raise request_error(error, "creating the EMR cluster") from error
    return response["JobFlowId"]


def _emr_error(error: botocore.exceptions.ClientError, doing: str) -> CloudError:
    details = error.response.get("Error", {})
    code = details.get("Code", "Error")
    message = details.get("Message", "")
    if code in ("AccessDeniedException", "AccessDenied"):
        return CloudError(
            f"access denied {doing}: {message}; fix: attach conf/iam/emr-submitter-policy.json "
            "to the identity in use"
        )
    if "PassRole" in message:
        return CloudError(
            f"{doing} needs iam:PassRole on the EMR roles: {message}; fix: see "
            "conf/iam/emr-submitter-policy.json"
        )
    return CloudError(f"{doing} failed: {code}: {message}")
