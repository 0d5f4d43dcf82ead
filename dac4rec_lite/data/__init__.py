"""Data: offline transition sets and the toy behaviour sets that ship with the kit."""
from .dataset import OfflineDataset
from .toy import CornerBandit, MultimodalBehavior

__all__ = ["OfflineDataset", "MultimodalBehavior", "CornerBandit"]
