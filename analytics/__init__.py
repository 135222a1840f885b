"""The figures: the statistics rollup, its reads and the HTML report."""
