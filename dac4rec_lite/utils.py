"""Seeding and the environment report used by every notebook (presets: ``dac4rec_lite.presets``)."""
from __future__ import annotations

import os
import platform

import numpy as np
import pandas as pd
import torch

from .presets import PRESETS, resolve_preset  # re-exported: the names and the rule live with the sizes

__all__ = ["PRESETS", "resolve_preset", "set_seed", "environment_report", "default_device"]


def set_seed(seed: int) -> torch.Generator:
    """Seed torch's and numpy's global generators (network initialisation) and return a fresh
    ``torch.Generator`` seeded the same way, to pass as ``generator=`` for sampling."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    return torch.Generator().manual_seed(seed)


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def environment_report() -> pd.DataFrame:
    """Versions and hardware, as a table: what notebook 00 shows and what to paste into a bug report."""
    import ipywidgets
    import plotly

    from . import __version__

    rows = [
        ("python", platform.python_version()),
        ("dac4rec_lite", __version__),
        ("torch", torch.__version__),
        ("numpy", np.__version__),
        ("pandas", pd.__version__),
        ("plotly", plotly.__version__),
        ("ipywidgets", ipywidgets.__version__),
        ("CPU threads used by torch", str(torch.get_num_threads())),
        ("CUDA available", str(torch.cuda.is_available())),
        ("CUDA device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"),
        ("DAC4REC_PRESET", os.environ.get("DAC4REC_PRESET", "(not set)")),
    ]
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")
