"""How two sets of settings differ, said the way a user writes them after --set.

Pure: used where reused descriptors (bovw.pipeline.provenance) or a model
(bovw.predict.model_file) are compared with what a configuration asks for, and where a
command refuses a setting it does not use.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from bovw.config.settings import ORB_SAMPLING_ONLY

__all__ = ["CONDITIONAL_SETTINGS", "RUN_KEYS", "SESSION_KEYS", "SESSION_ONLY_SETTINGS",
           "Difference", "covered", "first_nested_difference", "ignored_setting",
           "setting_value", "show", "unused_setting"]

# The sections of the Spark session and its S3 access: set once per command.
SESSION_KEYS = ("spark.", "s3.")
# What a pipeline run (run, demo, sweep, compare) uses: all but [predict], [cnn], [emr].
RUN_KEYS = ("seed", "spark.", "s3.", "ingest.", "orb.", "vocabulary.", "histograms.", "pca.",
            "classifier.", "tone.", "colour.")


@dataclass(frozen=True)
class Difference:
    """The first setting in which reused outputs (`made`) and the config (`asked`) differ."""

    key: str
    made: Any
    asked: Any


# Settings that cannot change a run's results, only how (and how fast) the session gets
# them: a run stopped for want of memory resumes with more. The results do not depend on
# the master or the number of cores (tests/test_cluster_determinism.py), nor on how Spark
# cuts its inputs, shuffles and Arrow batches: the vocabulary sample and the classifier's
# rows are laid out by class folder and file name. Any other spark.conf property (the
# SQL engine's behaviour, ...) may change them.
SESSION_ONLY_SETTINGS = (
    "spark.master", "spark.app_name", "spark.driver_memory", "spark.shuffle_partitions",
    "spark.arrow_batch_size", "spark.open_cost_bytes", "spark.max_partition_bytes",
    "spark.log_level", "spark.class_archive_dir", "spark.jit_threshold_scale",
    "spark.gc",
    "spark.conf.spark.driver.", "spark.conf.spark.executor.", "spark.conf.spark.memory.",
    "spark.conf.spark.ui.", "spark.conf.spark.local.dir", "spark.conf.spark.cores.max",
    "spark.conf.spark.port.maxRetries", "spark.conf.spark.network.timeout",
)


def first_nested_difference(made: Any, asked: Any, ignore: Collection[str] = (),
                     prefix: str = "") -> Difference | None:
    """The first dotted key (in `asked`'s order, then `made`'s) whose value differs
    between two nested dicts, None for a key missing on one side; keys `covered` by
    `ignore` (given without `prefix`) are left out."""
    if not (isinstance(made, dict) and isinstance(asked, dict)):
        return None if made == asked else Difference(prefix.rstrip("."), made, asked)
    for key in [*asked, *(key for key in made if key not in asked)]:
        dotted = f"{prefix}{key}"
        if covered(dotted, ignore):
            continue
        found = first_nested_difference(made.get(key), asked.get(key), ignore,
                                        f"{dotted}.")
        if found is not None:
            return found
    return None


def show(value: Any) -> str:
    """A setting's value as it is written after --set: true, 1.0,2.0, dense."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(show(item) for item in value)
    return str(value)


def unused_setting(asked: Collection[str], used: Collection[str]) -> str | None:
    """The first explicitly given key (`asked`) that a command does not use (`used`: keys,
    or prefixes ending with "."), or None."""
    return next((key for key in sorted(asked) if not covered(key, used)), None)


def covered(key: str, keys: Collection[str]) -> bool:
    """True when `key` is one of `keys` or starts with one of them that ends with "."."""
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in keys)


# Settings that a configuration itself leaves unused: (the keys, or prefixes ending with
# ".", the setting that decides, the values of it under which they are used). The orb
# settings of one sampling only: see ORB_SAMPLING_ONLY.
CONDITIONAL_SETTINGS: tuple[tuple[tuple[str, ...], str, tuple[Any, ...]], ...] = (
    *((tuple(f"orb.{name}" for name in names), "orb.sampling", (sampling,))
      for sampling, names in ORB_SAMPLING_ONLY.items()),
    (("histograms.soft_neighbours",), "histograms.assignment", ("soft",)),
    (("vocabulary.init_steps",), "vocabulary.init_mode", ("k-means||",)),
    # The Bernoulli mixture is fitted only for Fisher vectors.
    (("vocabulary.mixture_max_iter", "vocabulary.mixture_tol"), "histograms.encoding",
     ("fisher",)),
    (("tone.",), "tone.enabled", (True,)),
    (("colour.",), "colour.enabled", (True,)),
)


def ignored_setting(asked: Collection[str], configs: Collection[Any]) -> str | None:
    """Why the first explicitly given key (`asked`) is left unused by every one of
    `configs` (what a command runs: several for a sweep) by another of their settings
    (CONDITIONAL_SETTINGS), as "KEY applies to ... only"; None when each is used."""
    for key in sorted(asked):
        for keys, switch, values in CONDITIONAL_SETTINGS:
            if key == switch or not covered(key, keys):
                continue
            found = [setting_value(config, switch) for config in configs]
            if found and all(value not in values for value in found):
                wanted = " or ".join(show(value) for value in values)
                return (f"{key} applies only with {switch}={wanted} (here "
                        f"{switch}={show(found[0])})")
    return None


def setting_value(config: Any, dotted: str) -> Any:
    """The value of the dotted key `dotted` ("orb.sampling", "seed") in a Config."""
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
