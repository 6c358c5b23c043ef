"""Moved to gdfast._validation (the one module of argument checks).

Kept only for gdfast/hogwild/_checks.py's `from .._training_checks import float_dtype`;
delete this file once that line imports from .._validation.
"""

from ._validation import flag, float_dtype, integer, is_sparse

__all__ = ["flag", "float_dtype", "integer", "is_sparse"]
