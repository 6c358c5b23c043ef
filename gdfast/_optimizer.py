"""Former home of the optimizer machinery, now gdfast.catalogue: these names keep working."""

from .catalogue import MAX_STEPS, Hyperparameter, Optimizer, bind_backend

__all__ = ["MAX_STEPS", "Hyperparameter", "Optimizer", "bind_backend"]
