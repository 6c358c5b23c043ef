"""Deprecated address of gdfast.gallery (its runs, sweeps and settings): the same objects.

Kept only for tests/test_catalogue.py's `from gdfast import ... trajectories` (not
documented anywhere); delete this file once that line imports gdfast.gallery.
"""

from .gallery import *  # noqa: F403
from .gallery import __all__  # noqa: F401
