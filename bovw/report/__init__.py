"""report.html: one self-contained page per run, sweep or comparison, plots embedded.

    gather.py     the small data a run report shows, read from a run folder (Spark)
    pages.py      the pages: a run's sections, a sweep's, a comparison's
    plots.py      the plots, rendered to PNG bytes
    confusion.py  the most confused classes, and how a confusion matrix labels them
    html.py       tables, sections and the page itself

Sweeps and comparisons hand their data to the report; the report imports nothing of
bovw.experiments.
"""

from collections.abc import Callable

__all__ = ["report_drawer", "write_run_report"]


def report_drawer(spark, title: str | None = None) -> Callable[[str], str]:
    """What draws report.html (titled `title`) into the folder a run was written into, for
    run_pipeline's `report`: it calls it holding the run's lock, so the report is published
    with the run and shows no other command's files. Returns the report's path."""
    def draw(folder: str) -> str:
        # Imported here, when a report is drawn: matplotlib takes 0.4 s to import, which a
        # command that stops early (a refused output, bad input) need not wait for. (`bovw
        # run` loads it while its JVM starts, where it costs nothing: bovw.cli.run.)
        from bovw.report.pages import write_run_report

        return write_run_report(spark, folder, title=title)

    return draw


def __getattr__(name: str):
    if name == "write_run_report":
        from bovw.report.pages import write_run_report

        return write_run_report
    raise AttributeError(f"module 'bovw.report' has no attribute {name!r}")
