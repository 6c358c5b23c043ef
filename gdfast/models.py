"""Deprecated address of gdfast.train.models, kept because the README's examples use it
(`gdfast.models.MLP`): the same objects.  New code imports gdfast.train.models."""

from .train.models import *  # noqa: F403
from .train.models import __all__  # noqa: F401
