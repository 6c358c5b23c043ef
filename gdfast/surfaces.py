"""Deprecated address of gdfast.gallery.surfaces (the README's gallery names it): the same
objects.  Import them from gdfast.gallery (or gdfast.gallery.surfaces) instead."""

from .gallery.surfaces import *  # noqa: F403
from .gallery.surfaces import __all__  # noqa: F401
