"""The `bovw s3` and `bovw emr` commands: a dataset into S3, the pipeline on Amazon EMR."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from bovw.cli.common import RUN_KEYS, add_config_flags, overrides, refuse_ignored
from bovw.config import ConfigError, load_config

__all__ = ["HANDLERS", "add_commands"]


def add_commands(commands) -> None:
    """Add the s3 and emr sub-commands to the `bovw` parser's sub-parsers."""
    s3 = commands.add_parser("s3", help="put a dataset into S3 and look at it (boto3)")
    s3_commands = s3.add_subparsers(dest="s3_command", required=True, metavar="ls|upload")
    upload = s3_commands.add_parser("upload", help="upload a folder, skipping unchanged files")
    upload.add_argument("local_dir")
    upload.add_argument("s3_url", help="s3://bucket/prefix/")
    upload.add_argument("--no-progress", action="store_true", help="no progress bar")
    listing = s3_commands.add_parser("ls", help="list the objects under a prefix")
    listing.add_argument("s3_url", help="s3://bucket/prefix/")
    for sub in (upload, listing):
        add_config_flags(sub)
        sub.add_argument("--endpoint", help="S3-compatible endpoint URL (s3.endpoint)")

    emr = commands.add_parser("emr", help="run the pipeline on Amazon EMR")
    emr_commands = emr.add_subparsers(dest="emr_command", required=True, metavar="submit")
    submit = emr_commands.add_parser(
        "submit", help="add a pipeline step to a cluster, or create a cluster that runs it")
    submit.add_argument("--config-uri", required=True,
                        help="s3:// URI of the run's TOML config (shipped to the driver)")
    submit.add_argument("--input", required=True, help="s3:// or s3a:// dataset prefix")
    submit.add_argument("--output", required=True, help="s3:// or s3a:// run folder")
    submit.add_argument("--cluster-id", help="an existing cluster; without it one is created")
    submit.add_argument("--dry-run", action="store_true",
                        help="print the request instead of sending it")
    add_config_flags(submit)


def _s3(args: argparse.Namespace, environ: dict) -> int:
    from bovw.cloud.credentials import boto3_session
    from bovw.cloud.s3 import list_objects, s3_client, upload

    changes = overrides(args)
    if args.endpoint:
        changes["s3.endpoint"] = args.endpoint
    settings = load_config(args.config, changes).s3
    client = s3_client(settings, boto3_session(settings.profile, settings.region))
    if args.s3_command == "ls":
        count = 0
        for item in list_objects(args.s3_url, client):
            print(f"{item.size:>12}  {item.key}")
            count += 1
        print(f"{count} objects", file=sys.stderr)
        return 0
    report = upload(args.local_dir, args.s3_url, client, progress=not args.no_progress,
                    concurrency=settings.upload_concurrency,
                    multipart_threshold=settings.multipart_threshold_bytes)
    print(report.summary())
    return 1 if report.failed else 0


def _added_step_action(args: argparse.Namespace, configured: str) -> str | None:
    """The ActionOnFailure of a step added to the running cluster --cluster-id names (None:
    the configured one, for the cluster bovw creates). bovw never shuts down a cluster it
    did not create: TERMINATE_CLUSTER from the config file (or the default) becomes
    CONTINUE, said on stderr, and asked for on the command line is refused."""
    if not args.cluster_id or configured != "TERMINATE_CLUSTER":
        return None
    if "emr.action_on_failure" in overrides(args):
        raise ConfigError(f"emr.action_on_failure TERMINATE_CLUSTER would shut down cluster "
                          f"{args.cluster_id}, which bovw did not create, when the step "
                          "fails; fix: CONTINUE or CANCEL_AND_WAIT, or drop --cluster-id to "
                          "run on a cluster of its own")
    print(f"[bovw] note: the step added to {args.cluster_id} continues the cluster when it "
          "fails (ActionOnFailure CONTINUE): emr.action_on_failure TERMINATE_CLUSTER applies "
          "to a cluster bovw creates", file=sys.stderr)
    return "CONTINUE"


def _emr(args: argparse.Namespace, environ: dict) -> int:
    import json

    from bovw.cloud.credentials import boto3_session
    from bovw.cloud.emr import (
        build_step,
        cluster_request,
        create_cluster_with_step,
        emr_client,
        submit_step,
    )

    config = load_config(args.config, overrides(args))
    # The step's `bovw run` would refuse them on the cluster, after it had started.
    refuse_ignored(args, [config], (*RUN_KEYS, "emr."),
                   "an EMR step runs bovw run, which uses no [predict] or [cnn] settings")
    # --profile and --region are the submitter's (its credentials, the EMR API's region);
    # every other override goes to the cluster, which reads the same config file.
    forwarded = overrides(argparse.Namespace(**{**vars(args), "profile": None, "region": None}))
    step = build_step(config.emr, config_uri=args.config_uri, input_url=args.input,
                      output_url=args.output, overrides=forwarded, redactor=config.redactor(),
                      action_on_failure=_added_step_action(args, config.emr.action_on_failure))
    if args.dry_run:
        request = step if args.cluster_id else cluster_request(config.emr, step)
        print(json.dumps(request, indent=2))
        return 0
    settings = dataclasses.replace(config.emr, region=args.region or config.emr.region)
    client = emr_client(settings, boto3_session(config.s3.profile, settings.region))
    if args.cluster_id:
        print(f"step {submit_step(client, args.cluster_id, step)} added to {args.cluster_id}")
    else:
        print(f"cluster {create_cluster_with_step(client, config.emr, step)} created")
    return 0


HANDLERS = {"s3": _s3, "emr": _emr}
