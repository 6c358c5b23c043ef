"""Deprecated address of gdfast.gallery's runs, sweeps and settings: the same objects.

Kept only for tests/test_catalogue.py's `from gdfast import ... trajectories` (not
documented anywhere); delete this file once that line imports gdfast.gallery.
"""

from .gallery.runs import *  # noqa: F403
from .gallery.runs import __all__ as _runs
from .gallery.settings import *  # noqa: F403
from .gallery.settings import __all__ as _settings
from .gallery.sweeps import *  # noqa: F403
from .gallery.sweeps import __all__ as _sweeps

__all__ = [*_runs, *_settings, *_sweeps]
