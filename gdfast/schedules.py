"""Deprecated address of gdfast.train.schedules, kept because the README names it: the same
objects.  New code imports gdfast.train.schedules."""

from .train.schedules import *  # noqa: F403
from .train.schedules import __all__  # noqa: F401
