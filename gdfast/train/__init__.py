"""Training NumPy models with gdfast's optimizers: `fit` and what it is made of.

    loop        fit: batch, stochastic and mini-batch gradient descent, every strategy
    history     History, what fit returns (per-epoch losses, lr, speed, why it stopped)
    optimizer   make_optimizer: the optimizer fit trains with, from a name, class or instance
    batches     the examples checked once, then cut into batches epoch by epoch
    blas        the BLAS thread limit fit holds while it trains
    schedules   learning-rate schedules (StepDecay, ReduceOnPlateau, ...; parse("step:10:0.5"))
    strategies  Shuffle, Curriculum, EarlyStopping, GradientNoise
    models      LinearRegression, LogisticRegression, SoftmaxRegression, MLP: objectives for fit
    gradcheck   check_grad: an objective's gradient against central differences

The first homes of these names (gdfast.training, gdfast.schedules, gdfast.strategies,
gdfast.models, gdfast.gradcheck) still import the same objects; they are deprecated
addresses, kept for the README and the docs.
"""

from . import gradcheck, models, schedules, strategies
from .gradcheck import check_grad
from .history import STOP_REASONS, History
from .loop import fit
from .optimizer import make_optimizer

__all__ = [
    "fit",
    "History",
    "STOP_REASONS",
    "make_optimizer",
    "check_grad",
    "models",
    "schedules",
    "strategies",
    "gradcheck",
]
