"""gdfast.train.schedules at its first address (kept importable): the same objects."""

from .train.schedules import *  # noqa: F403
from .train.schedules import __all__  # noqa: F401
