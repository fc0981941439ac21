"""seqbench.reports — backend selection reports from asv and conformance results.

* :mod:`.load`: results directories -> one tidy pandas table (:data:`.load.COLUMNS`), joining
  :mod:`.benchmark_rows` (asv results, read by :mod:`seqbench.results.asv_files`) and
  :mod:`.conformance_rows`, with :mod:`.peaks` (rooflines) and :mod:`.training` (the embedding trainers);
* :mod:`.noise`: asv's significance test on two rows of the table, a row's relative noise;
* :mod:`.plausibility`: the measurements the report does not believe (flagged, with why) and the usable rest;
* :mod:`.select`: per workload, the fastest conforming backend, the runner-up, what was dropped and why;
* :mod:`.render`: the report's sections, with :mod:`.tables` and :mod:`.plots` (:mod:`.beside`: what stands
  beside a winner, in words; :mod:`.pareto`: speed against accuracy; :mod:`.tradeoffs`: that section and how far
  to trust an estimate), written by :mod:`.pages` as Markdown and a single-file HTML page;
* :mod:`.cli`: ``seqbench report`` and ``seqbench select``;
* :mod:`.browser`: load a page in headless Chromium (console errors, images, screenshot).

pandas, matplotlib and asv (the ``report`` extra) are imported only when used.
"""


def write_report(results_dirs, out_dir, dashboard=None):
    """Write the report for ``results_dirs`` into ``out_dir``; returns the HTML page's path."""
    from .render import write_report as write

    return write(results_dirs, out_dir, dashboard)


__all__ = ["write_report"]
