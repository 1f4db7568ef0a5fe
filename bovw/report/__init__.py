"""report.html: one self-contained page per run, sweep or comparison, plots embedded.

    gather.py  the small data a run report shows, read from a run folder (Spark)
    pages.py   the pages: a run's sections, a sweep's, a comparison's
    plots.py   the plots, rendered to PNG bytes
    confusion.py  the most confused classes, and how a confusion matrix labels them
    html.py    tables, sections and the page itself

Sweeps and comparisons hand their data to the report; the report imports nothing of
bovw.experiments.
"""

__all__ = ["write_run_report"]


def __getattr__(name: str):
    if name == "write_run_report":
        from bovw.report.pages import write_run_report

        return write_run_report
    raise AttributeError(f"module 'bovw.report' has no attribute {name!r}")
