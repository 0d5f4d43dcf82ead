"""Experiments: the paper's studies and the machinery that runs them (``runner.execute``: local processes or Ray,
resumable run tables)."""
