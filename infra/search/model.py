"""A model of capacity learnt from the trials so far, for choosing the next one. Pure.

What a configuration costs is known before it runs (the price catalogue); only its
capacity is not. So the search models capacity, not cost: the logarithm of a
configuration's capacity is its serving pods (known: capacity grows with them), plus a
learnt exponent of each pod's cores, plus a learnt effect of every value of every
dimension (machine type, pods per node, threads, batching...), in a Bayesian linear
regression with a Gaussian prior that keeps each effect small until trials show it. Each
measured capacity range adds one observation (the middle of the range, in log terms; a
range that is still open or empty adds what it bounds).

Thompson sampling chooses the next configuration: draw one plausible set of effects from
the posterior, predict every unmeasured configuration's capacity, price it (with the
target load, whole nodes), and measure the one that comes out cheapest. Early on the
draws are wide and the choices spread over the space; as trials accumulate they settle
on the region the evidence favours, while still trying what could plausibly beat it.
The linear algebra is numpy's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from infra.search.objective import Goal
from infra.search.space import Candidate, SearchSpace

# Prior standard deviations (log capacity): the level is unknown (a requests/s per core
# anywhere from 0.1 to 1000), the per-core exponent is near 1 (0.5 to 1.5 plausible), and
# a single setting's value rarely moves capacity by more than a factor of 1.5 (2 sd).
LEVEL_PRIOR_SD = 3.0
CORES_PRIOR = (0.85, 0.3)  # mean, sd of the exponent of a pod's cores
EFFECT_PRIOR_SD = 0.2
# A measured range's middle is within about 5% of the capacity; the model's own misfit
# (settings that interact) adds to it.
OBSERVATION_SD = 0.05


def _columns(space: SearchSpace) -> list[tuple[str, object]]:
    return [(key, value) for key, values in space.dimensions.items() for value in values]


def features(candidate: Candidate, columns: Sequence[tuple[str, object]]) -> np.ndarray:
    row = [1.0, math.log(max(candidate.pod_cores, 1))]
    row += [1.0 if candidate.features.get(key) == value else 0.0 for key, value in columns]
    return np.array(row)


def observed_log_capacity(low: float | None, high: float | None) -> tuple[float, float] | None:
    """What a capacity range tells of log capacity, and how surely (a standard deviation):
    its middle, as sure as the range is narrow; an open range somewhat above its low end;
    nothing passed, somewhat under the rate that failed."""
    if low and high:
        half_width = (math.log(high) - math.log(low)) / 2
        return math.log(low) + half_width, max(OBSERVATION_SD, half_width)
    if low:
        return math.log(low * 1.5), 0.4
    if high:
        return math.log(high * 0.6), 0.4
    return None


class CapacityModel:
    """Bayesian linear regression of log capacity on a configuration's features."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.columns = _columns(space)
        width = 2 + len(self.columns)
        self.prior_mean = np.zeros(width)
        self.prior_mean[1] = CORES_PRIOR[0]
        sds = np.full(width, EFFECT_PRIOR_SD)
        sds[0], sds[1] = LEVEL_PRIOR_SD, CORES_PRIOR[1]
        self.prior_precision = np.diag(1 / sds**2)
        self.rows: list[np.ndarray] = []
        self.targets: list[float] = []
        self.weights: list[float] = []

    def observe(self, candidate: Candidate, low: float | None, high: float | None) -> None:
        observed = observed_log_capacity(low, high)
        if observed is None:
            return
        value, sd = observed
        self.rows.append(features(candidate, self.columns))
        # The pods are known: the regression learns capacity per pod.
        self.targets.append(value - math.log(max(candidate.pods, 1)))
        self.weights.append(1 / sd**2)

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        precision = self.prior_precision.copy()
        weighted = self.prior_precision @ self.prior_mean
        if self.rows:
            x = np.vstack(self.rows)
            y = np.array(self.targets)
            w = np.array(self.weights)
            precision += x.T @ (x * w[:, None])
            weighted += x.T @ (y * w)
        covariance = np.linalg.inv(precision)
        return covariance @ weighted, covariance

    def choose(
        self,
        left: Sequence[Candidate],
        goal: Goal,
        rng: np.random.Generator,
        exploit: bool = False,
    ) -> Candidate:
        """The configuration one posterior draw prices cheapest (Thompson sampling); with
        `exploit`, the one the posterior's mean prices cheapest (for the last trials)."""
        mean, covariance = self.posterior()
        draw = mean if exploit else rng.multivariate_normal(mean, (covariance + covariance.T) / 2)
        best, best_score = left[0], math.inf
        for candidate in left:
            per_pod = float(features(candidate, self.columns) @ draw)
            capacity = math.exp(min(per_pod, 50.0)) * max(candidate.pods, 1)
            score = goal.score(candidate.price, capacity)
            if score < best_score:
                best, best_score = candidate, score
        return best
