"""Deprecated address of gdfast.train.strategies, kept because the README's examples use it
(`from gdfast.strategies import EarlyStopping`): the same objects.  New code imports
gdfast.train.strategies."""

from .train.strategies import *  # noqa: F403
from .train.strategies import __all__  # noqa: F401
