"""gdfast.train.models at its first address (kept importable): the same objects."""

from .train.models import *  # noqa: F403
from .train.models import __all__  # noqa: F401
