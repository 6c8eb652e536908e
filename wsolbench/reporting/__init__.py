"""The results store's read side: run tables, the paper's tables and figures, and
drawings of maps and boxes."""

FORMATS = ("md", "csv", "latex")  # table formats
DATA_FORMATS = ("parquet",)  # the runs table as data (`wsolbench.runs()`), to a file
PICKS = ("worst", "best", "random")  # which test images ``show`` draws
RUN_FIGURES = ("fig5", "fig6")  # figures drawn from given runs, not from a spec
