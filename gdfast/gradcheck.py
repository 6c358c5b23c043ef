"""gdfast.train.gradcheck at its first address (kept importable): the same objects."""

from .train.gradcheck import *  # noqa: F403
from .train.gradcheck import __all__  # noqa: F401
