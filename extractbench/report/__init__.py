"""The leaderboard report, from the records of the run store to Markdown, HTML, CSV and plots.

Data flow: :mod:`~extractbench.report.frames` (records into frames; column names in
:mod:`~extractbench.report.columns`) → :mod:`~extractbench.report.analysis` (every figure,
computed once over each task's ranking set (:mod:`~extractbench.report.requirement`), into the
typed rows of :mod:`~extractbench.report.rows`) → the renderers
(:mod:`~extractbench.report.sections`, :mod:`~extractbench.report.markdown`,
:mod:`~extractbench.report.html_page`, :mod:`~extractbench.report.plots`), driven by
:func:`extractbench.report.leaderboard.write_leaderboard`.
"""
