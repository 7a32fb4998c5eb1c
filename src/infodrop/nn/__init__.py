"""Dropout layers with continuous noise: information dropout (Achille & Soatto, TPAMI 2018) and
Gaussian dropout (Srivastava et al., JMLR 2014), plus helpers over a model's dropout layers.
KL values are in nats."""

from infodrop.nn.batch_norm import refreshed_batch_norm
from infodrop.nn.dropout import (
    DROPOUT_KINDS,
    check_dropout_kind,
    continuous_dropout_layers,
    kl_divergence,
    make_dropout,
    set_mc,
)
from infodrop.nn.gaussian import GaussianDropout, gaussian_dropout, variance_from_rate
from infodrop.nn.information import (
    ACTIVATIONS,
    InformationDropout,
    activation_module,
    check_activation,
    information_dropout,
    log_normal_kl,
    log_uniform_kl,
    resolve_prior,
)

__all__ = [
    "refreshed_batch_norm",
    "ACTIVATIONS",
    "DROPOUT_KINDS",
    "GaussianDropout",
    "InformationDropout",
    "activation_module",
    "check_activation",
    "check_dropout_kind",
    "continuous_dropout_layers",
    "gaussian_dropout",
    "information_dropout",
    "kl_divergence",
    "log_normal_kl",
    "log_uniform_kl",
    "make_dropout",
    "resolve_prior",
    "set_mc",
    "variance_from_rate",
]
