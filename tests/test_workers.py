"""bovw.spark.workers: the Python workers a pipeline command starts ahead, in the background."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from bovw.cli import common
from bovw.spark.workers import WARM_UP_GROUP, WorkerWarmUp, warm_python_workers
from tests.cluster_fixtures import REPO_ROOT, subprocess_environment


def _stage_tasks(spark, group: str, seen: frozenset[int] = frozenset()) -> list[int]:
    """The task counts of the stages of `group`'s jobs other than those `seen`. Only new
    jobs are read: Spark's status tracker forgets old ones (spark.ui.retainedJobs), and a
    forgotten job's info is None after a long suite."""
    tracker = spark.sparkContext.statusTracker()
    tasks = []
    for job in sorted(set(tracker.getJobIdsForGroup(group)) - seen):
        for stage in tracker.getJobInfo(job).stageIds:
            tasks.append(tracker.getStageInfo(stage).numTasks)
    return tasks


def test_one_task_per_local_slot_in_its_own_group(spark):
    seen = frozenset(spark.sparkContext.statusTracker().getJobIdsForGroup(WARM_UP_GROUP))

    warm_up = warm_python_workers(spark)

    assert warm_up is not None and warm_up.tasks == 2  # the test session is local[2]
    assert warm_up.wait(120)
    assert warm_up.error is None
    assert _stage_tasks(spark, WARM_UP_GROUP, seen) == [2]


def test_the_warm_up_imports_the_per_image_code():
    # In a fresh interpreter (the workers of the test session have long imported it all):
    # OpenCV and bovw.image are there once the warm-up's function has run, and the rows
    # pass through it unchanged.
    code = ("import sys; from bovw.spark import workers; "
            "before = {'cv2', 'bovw.image.orb'} & set(sys.modules); "
            "rows = list(workers._import_per_image_code(iter([1, 2]))); "
            "print(sorted(before), rows, {'cv2', 'bovw.image.orb'} <= set(sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)

    assert done.stdout.strip() == "[] [1, 2] True"


def test_a_worker_without_opencv_is_left_to_the_descriptors_stage():
    # The warm-up passes its rows on; the descriptors stage's own import then fails, once,
    # with the traceback the user sees.
    code = ("import sys; sys.modules['cv2'] = None; from bovw.spark import workers; "
            "print(list(workers._import_per_image_code(iter([1, 2]))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)

    assert done.stdout.strip() == "[1, 2]"


@pytest.mark.parametrize("master", ["yarn", "spark://host:7077", "k8s://https://host:6443"])
def test_nothing_on_a_cluster(master):
    session = types.SimpleNamespace(sparkContext=types.SimpleNamespace(master=master))

    assert warm_python_workers(session) is None


def test_a_failed_warm_up_is_kept_not_raised():
    def refuse(*_args, **_kwargs):
        raise RuntimeError("no JVM")

    session = types.SimpleNamespace(sparkContext=types.SimpleNamespace(setJobGroup=refuse))

    warm_up = WorkerWarmUp(session, 4)

    assert warm_up.wait(10)
    assert isinstance(warm_up.error, RuntimeError) and str(warm_up.error) == "no JVM"


def test_the_warm_up_leaves_no_job_group_behind():
    # With unpinned threads (PYSPARK_PIN_THREAD=false) the warm-up's JVM thread may later
    # run a stage's jobs: its group must not stick to them, whether the job ran or not.
    properties = {}

    def no_range(*_args, **_kwargs):
        raise RuntimeError("stopped")

    def set_group(group, description, interruptOnCancel=False):
        properties.update({"spark.jobGroup.id": group, "spark.job.description": description,
                           "spark.job.interruptOnCancel": str(interruptOnCancel).lower()})

    context = types.SimpleNamespace(setJobGroup=set_group, setLocalProperty=properties.__setitem__)
    warm_up = WorkerWarmUp(types.SimpleNamespace(sparkContext=context, range=no_range), 2)

    assert warm_up.wait(10)
    assert str(warm_up.error) == "stopped"
    assert properties == {"spark.jobGroup.id": None, "spark.job.description": None,
                          "spark.job.interruptOnCancel": None}


@pytest.mark.parametrize("warm", [True, False])
def test_the_cli_session_warms_only_when_asked(spark, test_config, monkeypatch, warm):
    started = []
    monkeypatch.setattr(common, "warm_python_workers", started.append)
    monkeypatch.setattr(common.interrupt, "install", lambda _spark: None)  # pytest's Ctrl-C

    assert common.session(test_config, dict(os.environ), "/tmp/in", "/tmp/out",
                          warm_workers=warm) is spark

    assert started == ([spark] if warm else [])


@pytest.mark.parametrize("command", ["run", "demo", "sweep", "compare"])
def test_pipeline_commands_ask_for_warm_workers(command, tmp_path, monkeypatch):
    from bovw.cli import experiments, run
    from bovw.cli.command import build_parser

    for split in ("Training", "Test"):  # what check_local_dataset wants; never read here
        for fruit in ("Apple", "Pear"):
            (tmp_path / "in" / split / fruit).mkdir(parents=True)
            (tmp_path / "in" / split / fruit / "0.jpg").write_bytes(b"not read")
    asked = []

    class Stop(Exception):
        pass

    def session(*_args, warm_workers=False, **_kwargs):
        asked.append(warm_workers)
        raise Stop

    module = run if command in ("run", "demo") else experiments
    monkeypatch.setattr(module, "session", session)
    monkeypatch.setattr(run, "demo_dataset", lambda *_args: tmp_path / "in")
    paths = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    flags = {"run": paths, "demo": ["--workdir", str(tmp_path)],
             "sweep": [*paths, "--param", "vocabulary.k=5,6"], "compare": paths}[command]
    with pytest.raises(Stop):
        module.HANDLERS[command](build_parser().parse_args([command, *flags]), {})

    assert asked == [True]


_LOADED_WHILE_STARTING = """
import sys
from bovw.cli import run
from bovw.cli.command import build_parser

class Stop(Exception):
    pass

def session(*_args, meanwhile, **_kwargs):
    wanted = ("bovw.pipeline.run", "bovw.report.pages", "matplotlib")
    print([name in sys.modules for name in wanted], end=" ")
    meanwhile()
    print([name in sys.modules for name in wanted])
    raise Stop

run.session = session
run.demo_dataset = lambda *_args: sys.argv[2]
flags = {"run": ["--input", sys.argv[2], "--output", sys.argv[3]],
         "demo": ["--workdir", sys.argv[3]]}[sys.argv[1]]
try:
    run.HANDLERS[sys.argv[1]](build_parser().parse_args([sys.argv[1], *flags]), {})
except Stop:
    pass
"""


@pytest.mark.parametrize("command", ["run", "demo"])
def test_run_and_demo_load_the_pipeline_and_report_while_the_jvm_starts(command, tmp_path):
    # Loaded while the driver JVM boots (bovw.spark.console.driver_starting), the ~1 s of
    # imports is hidden in its launch; before it or after, it added to the run's time.
    for split in ("Training", "Test"):
        for fruit in ("Apple", "Pear"):
            (tmp_path / "in" / split / fruit).mkdir(parents=True)
            (tmp_path / "in" / split / fruit / "0.jpg").write_bytes(b"not read")
    done = subprocess.run(
        [sys.executable, "-c", _LOADED_WHILE_STARTING, command, str(tmp_path / "in"),
         str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO_ROOT,
        env=subprocess_environment(), timeout=120)
    assert (done.returncode, done.stdout) == (
        0, "[False, False, False] [True, True, True]\n"), done.stderr[-2000:]
