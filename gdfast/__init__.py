"""gdfast: gradient-descent optimizers as multi-threaded C kernels, with a NumPy reference.

    import numpy as np, gdfast
    w = np.zeros((784, 10), dtype=np.float32); b = np.zeros(10, dtype=np.float32)
    opt = gdfast.Adam([w, b], lr=1e-3)        # gdfast.reference.Adam: same API, pure NumPy
    opt.step([grad_w, grad_b])                # w and b updated in place, GIL released

The update rules are SPEC.md section 1: SGD, Momentum, Nesterov, Adagrad,
Adadelta, RMSprop, Adam, AdaMax, Nadam, AMSGrad, in float32 and float64, plus
AdamW (Adam with decoupled weight decay); gdfast.catalogue declares each once.  Every
rule takes named options for the other libraries' variants and
`convention="paper"|"torch"|"keras"`; `gdfast.torch` holds drop-in torch.optim classes
(import it explicitly).

Without the compiled extension (a source tree where nothing was built) `import gdfast`
and `gdfast.reference` still work; the first use of anything that runs the kernels
(gdfast.Adam, ...) raises an ImportError that says what to run.
"""

from ._version import __version__
from . import reference
from .catalogue import Optimizer
from .rows import RowGrad

try:
    from . import _build_check  # noqa: F401  (a clear ImportError when the extension is not built)
except ImportError as error:
    _BUILD_ERROR: str | None = str(error)
else:
    _BUILD_ERROR = None
    from ._kernels import kernel_isa
    from ._kernels import openmp_enabled
    from ._threads import get_num_threads, set_num_threads, threads
    from . import optim
    from .state_file import load_state, save_state
    from .train import models, schedules, strategies
    from .train import History, check_grad, fit

    globals().update({cls.__name__: cls for cls in optim.CLASSES})

# The rules' classes, gdfast.SGD ... gdfast.AMSGrad: every declaration of the catalogue.
RULES = tuple(rule.__name__ for rule in reference.CLASSES)

__all__ = [
    *RULES,
    "Optimizer",
    "reference",
    "save_state",
    "load_state",
    "RowGrad",
    "fit",
    "History",
    "check_grad",
    "models",
    "schedules",
    "strategies",
    "set_num_threads",
    "get_num_threads",
    "threads",
    "openmp_enabled",
    "kernel_isa",
    "__version__",
]


def __getattr__(name: str):
    if _BUILD_ERROR is not None and (name in __all__ or name in ("hogwild", "optim")):
        raise ImportError(_BUILD_ERROR)
    # gdfast.hogwild needs scipy and scikit-learn (the "data" extra): imported on first use.
    if name == "hogwild":
        import importlib

        return importlib.import_module(".hogwild", __name__)
    raise AttributeError(f"module 'gdfast' has no attribute {name!r}")
