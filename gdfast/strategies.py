"""gdfast.train.strategies at its first address (kept importable): the same objects."""

from .train.strategies import *  # noqa: F403
from .train.strategies import __all__  # noqa: F401
