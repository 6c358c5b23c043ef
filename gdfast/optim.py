"""gdfast's optimizers: the classes of gdfast._optimizer on the C kernels."""

import functools

from . import _kernels, _optimizer

SGD = _optimizer.bind_backend(_optimizer.SGD, _kernels.sgd, "gdfast", _kernels.sgd_rows)
Momentum = _optimizer.bind_backend(
    _optimizer.Momentum, _kernels.momentum, "gdfast", _kernels.momentum_rows
)
Nesterov = _optimizer.bind_backend(_optimizer.Nesterov, _kernels.nesterov, "gdfast")
Adagrad = _optimizer.bind_backend(
    _optimizer.Adagrad, _kernels.adagrad, "gdfast", _kernels.adagrad_rows
)
Adadelta = _optimizer.bind_backend(_optimizer.Adadelta, _kernels.adadelta, "gdfast")
RMSprop = _optimizer.bind_backend(
    _optimizer.RMSprop, _kernels.rmsprop, "gdfast", _kernels.rmsprop_rows
)
Adam = _optimizer.bind_backend(_optimizer.Adam, _kernels.adam, "gdfast", _kernels.adam_rows)
AdamW = _optimizer.bind_backend(
    _optimizer.AdamW, functools.partial(_kernels.adam, decoupled_weight_decay=True), "gdfast"
)
AdaMax = _optimizer.bind_backend(_optimizer.AdaMax, _kernels.adamax, "gdfast")
Nadam = _optimizer.bind_backend(_optimizer.Nadam, _kernels.nadam, "gdfast")
AMSGrad = _optimizer.bind_backend(_optimizer.AMSGrad, _kernels.amsgrad, "gdfast")

# The ten rules of SPEC.md (AdamW is Adam with one option fixed, listed apart).
OPTIMIZERS = (SGD, Momentum, Nesterov, Adagrad, Adadelta, RMSprop, Adam, AdaMax, Nadam, AMSGrad)
