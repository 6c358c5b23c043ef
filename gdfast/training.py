"""Deprecated address of gdfast.train's fit, History, make_optimizer and STOP_REASONS, kept
because docs/api/training.md says the first paths still work (and bench/fit_overhead.py
imports it): the same objects.  New code uses gdfast.fit / gdfast.History or imports
gdfast.train."""

from .train import STOP_REASONS, History, fit, make_optimizer

__all__ = ["fit", "History", "make_optimizer", "STOP_REASONS"]
