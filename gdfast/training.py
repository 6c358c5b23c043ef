"""`gdfast.fit` and History at their first address; they live in gdfast.train (kept importable)."""

from .train import STOP_REASONS, History, fit, make_optimizer

__all__ = ["fit", "History", "make_optimizer", "STOP_REASONS"]
