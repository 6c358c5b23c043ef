"""Deprecated address of gdfast.train.gradcheck, kept because docs/api/training.md says the
first paths still work: the same objects.  New code uses gdfast.check_grad or imports
gdfast.train.gradcheck."""

from .train.gradcheck import *  # noqa: F403
from .train.gradcheck import __all__  # noqa: F401
