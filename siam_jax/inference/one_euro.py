"""The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012), vectorised over arrays, numpy.

For a signal sampled at ``rate`` Hz (sample period T_e = 1 / rate), with
alpha(f_c) = 1 / (1 + tau / T_e), tau = 1 / (2 pi f_c) (the paper's exponential smoothing
factor for cutoff f_c):

    x^_0 = x_0,  dx^_0 = 0
    dx_i  = (x_i - x^_{i-1}) * rate                        (the paper's derivative estimate)
    dx^_i = alpha(d_cutoff) dx_i + (1 - alpha(d_cutoff)) dx^_{i-1}
    f_c   = min_cutoff + beta |dx^_i|                       (element-wise)
    x^_i  = alpha(f_c) x_i + (1 - alpha(f_c)) x^_{i-1}

Small ``min_cutoff`` removes jitter at low speed; ``beta`` raises the cutoff (less lag) when the
signal moves fast. Every element of the array is filtered independently.
"""

from __future__ import annotations

import math

import numpy as np


def smoothing_factor(cutoff: float | np.ndarray, rate: float) -> float | np.ndarray:
    """alpha = 1 / (1 + tau / T_e) with tau = 1 / (2 pi cutoff), T_e = 1 / rate."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau * rate)


class OneEuroFilter:
    """One filter state per element of the arrays passed to ``__call__`` (fixed shape)."""

    def __init__(
        self, rate: float, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0
    ):
        if rate <= 0 or min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(
                f"One-Euro needs rate, min_cutoff, d_cutoff > 0 and beta >= 0, got rate={rate}, "
                f"min_cutoff={min_cutoff}, d_cutoff={d_cutoff}, beta={beta}"
            )
        self.rate, self.min_cutoff, self.beta, self.d_cutoff = rate, min_cutoff, beta, d_cutoff
        self.x_prev: np.ndarray | None = None
        self.dx_prev: np.ndarray | None = None

    def reset(self) -> None:
        self.x_prev = self.dx_prev = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.x_prev is None:
            self.x_prev, self.dx_prev = x.copy(), np.zeros_like(x)
            return x.copy()
        if x.shape != self.x_prev.shape:
            raise ValueError(f"One-Euro input shape changed from {self.x_prev.shape} to {x.shape}")
        dx = (x - self.x_prev) * self.rate
        a_d = smoothing_factor(self.d_cutoff, self.rate)
        dx_hat = a_d * dx + (1.0 - a_d) * self.dx_prev
        a = smoothing_factor(self.min_cutoff + self.beta * np.abs(dx_hat), self.rate)
        x_hat = a * x + (1.0 - a) * self.x_prev
        self.x_prev, self.dx_prev = x_hat, dx_hat
        return x_hat.copy()
