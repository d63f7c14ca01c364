"""What the chapters show: figures, tables, explorers, the lecture's printouts, the report.

- :mod:`~makemore.show.plots`          the plot helpers, one consistent style
- :mod:`~makemore.show.panels`         several networks side by side: panel grids, one legend
- :mod:`~makemore.show.tables`         Markdown tables from rows, numbers formatted once
- :mod:`~makemore.show.init_plots`     the figures of an initialization's first steps
- :mod:`~makemore.show.layer_figures`  what single layers do: init, parameters, BatchNorm, folding
- :mod:`~makemore.show.grid_plots`     the figures of the experiments' grid
- :mod:`~makemore.show.corpus_plots`   the figures of the names' statistics
- :mod:`~makemore.show.beyond_plots`   the figures of "Beyond BatchNorm": depth, Adam's gain sweep
- :mod:`~makemore.show.explorer`       one figure + controls -> a live widget or static HTML
- :mod:`~makemore.show.interactive`    the book's sliders, live (ipywidgets) and static (HTML)
- :mod:`~makemore.show.lecture`        the lecture notebook's printouts, recomputed and compared
- :mod:`~makemore.show.report`         the reproduction report: this build vs the lecture's loss log
"""
