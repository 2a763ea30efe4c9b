"""A model of capacity learnt from the trials so far, for choosing the next one. Pure.

What a configuration costs is known before it runs (the price catalogue); only its
capacity is not. So the search models capacity, not cost. The logarithm of a
configuration's capacity per serving pod (the pods are known: capacity grows with them) is
a Bayesian linear regression on:
- a level and a learnt exponent of each pod's cores, for a pod on CPUs; on a GPU host
  (where the space has any) a level of its own and an exponent of the pod's share of GPUs
  instead (one GPU, or half of one time-shared by two pods): a GPU server's capacity
  comes from its GPU, not from the host's cores;
- one effect per value of each dimension (machine type, pods per node, threads,
  batching...); a value with no effect in a configuration (a batch size with batching off)
  is absent from it, so conditional dimensions count only where they act;
- one effect per pair of values of two dimensions: batching that pays with one pod per
  node and costs with four, a family that gains more from batching than another, a batch
  timeout that matters only with batching on. Their prior is narrower than the main
  effects', so they grow only where trials show them;
- the threads a pod runs beyond its cores (log2 of intra-op times inter-op threads over
  the pod's cores, when over): oversubscription slows everything, whatever the values
  that cause it.
The priors are wide (a single value may halve or double capacity), because real spaces
have effects that large.

Every measured capacity range is an interval on log capacity, not a point: low the rate
that passed, high the rate that failed; either may be missing (a search stopped early, or
nothing passed). A narrow range pins the capacity down; a trial stopped early only bounds
it, and teaches only where the model would otherwise predict past its bounds. The
posterior with such censored observations has no closed form: it is sampled by Gibbs
sampling with data augmentation (each observation's log capacity drawn inside its
interval given the effects, then the effects given those), the chain carried from one
choice to the next.

Thompson sampling chooses the next configuration: one draw of the effects from that
posterior prices every unmeasured configuration (with the target load, whole nodes), and
the cheapest is measured. Early on the draws are wide and the choices spread over the
space; as trials accumulate they settle on the region the evidence favours, while still
trying what could plausibly beat it. The linear algebra is numpy's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from infra.sweep.search.objective import Goal
from infra.sweep.search.space import Candidate, SearchSpace

# Prior standard deviations (log capacity): the level is unknown (a requests/s per core
# anywhere from 0.1 to 1000), the per-core exponent is near 1 (0.5 to 1.5 plausible), a
# single value may halve or double capacity (2 sd), a pair of values together moves it
# by up to a third, and each doubling of threads over the pod's cores costs about a tenth.
LEVEL_PRIOR_SD = 3.0
CORES_PRIOR = (0.85, 0.3)  # mean, sd of the exponent of a pod's cores
# On a GPU: its level apart from the CPUs' (as unknown), and the exponent of a pod's share
# of GPUs (a time-shared GPU gives each of its pods a little less than its share).
GPU_LEVEL_PRIOR_SD = 3.0
GPU_SHARE_PRIOR = (1.0, 0.8)
# TF Serving's batching guide: "batching is necessary to unlock the high throughput
# promised by hardware accelerators such as GPUs". A GPU server is expected to gain from
# it (+50% in log terms), as the CPUs are not; what the trials show then decides.
GPU_BATCHING_PRIOR_MEAN = 0.4
BATCHING = ("enableBatching", True)
EFFECT_PRIOR_SD = 0.25
PAIR_PRIOR_SD = 0.08
# How large effects are differs between spaces (a model whose pods thrash on one shape, a
# family twice as fast): the two scales above are what the search starts from, then the
# pair of these that makes what it has measured most likely (the marginal likelihood,
# type-II maximum likelihood), chosen again every few trials.
EFFECT_SCALES = (0.15, 0.25, 0.4, 0.6)
PAIR_SCALES = (0.03, 0.08, 0.15, 0.25)
RESCALE_EVERY = 5
RESCALE_FROM = 8  # observations before the scales are chosen from them
OVERSUBSCRIBED_PRIOR = (-0.1, 0.2)
# What no effect explains, plus the measurement's own noise inside its range (log terms).
OBSERVATION_SD = 0.05
# Gibbs sweeps before each choice (the chain carries on from the previous choice).
SWEEPS = 3
MEAN_SWEEPS = 20  # averaged for the posterior mean (the last trials exploit it)
# A one-sided observation starts the chain where the model expects it, but at least this
# far inside its bound.
START_OFFSET = 0.05

INTRA, INTER = "tensorflowIntraOpParallelism", "tensorflowInterOpParallelism"
MACHINE_TYPE = "machineType"
_NORMAL = NormalDist()


def oversubscribed(candidate: Candidate) -> float:
    """log2 of the threads a pod runs over its cores (0 when within them): intra-op
    threads times inter-op threads; 0 for either means the pod's cores."""
    cores = max(candidate.pod_cores, 1)
    settings = {**candidate.settings, **candidate.features}

    def threads(key: str) -> int:
        return int(settings.get(key) or 0) or cores

    return max(0.0, math.log2(threads(INTRA) * threads(INTER) / cores))


class Features:
    """The regression's columns for a space: level, cores, main effects, pairs, threads."""

    def __init__(self, space: SearchSpace) -> None:
        self.values = [(key, value) for key, values in space.dimensions.items() for value in values]
        self.index = {pair: 2 + i for i, pair in enumerate(self.values)}
        keys = list(space.dimensions)
        self.pairs: dict[tuple[tuple[str, object], tuple[str, object]], int] = {}
        start = 2 + len(self.values)
        for first, second in itertools.combinations(keys, 2):
            for a in space.dimensions[first]:
                for b in space.dimensions[second]:
                    self.pairs[((first, a), (second, b))] = start + len(self.pairs)
        self.threads_column = start + len(self.pairs)
        self.width = self.threads_column + 1
        # GPU level and share columns, where the space has GPU hosts; and each value's
        # effect (and each pair's) on a GPU server apart from its effect on CPUs
        # (batching, pods per node and threads act otherwise there: time-sharing, kernel
        # launches, host CPUs).
        self.gpu_columns: tuple[int, int] | None = None
        self.gpu_index: dict[tuple[str, object], int] = {}
        self.gpu_pairs: dict[tuple[tuple[str, object], tuple[str, object]], int] = {}
        if any(c.gpus_per_pod for c in space.candidates):
            self.gpu_columns = (self.width, self.width + 1)
            self.width += 2
            for pair in self.values:
                if pair[0] != MACHINE_TYPE:  # a machine type is a GPU host or not
                    self.gpu_index[pair] = self.width
                    self.width += 1
            for both in self.pairs:
                if MACHINE_TYPE not in (both[0][0], both[1][0]):
                    self.gpu_pairs[both] = self.width
                    self.width += 1
        self.keys = keys

    def row(self, candidate: Candidate) -> np.ndarray:
        row = np.zeros(self.width)
        row[0] = 1.0
        on_gpu = bool(candidate.gpus_per_pod and self.gpu_columns)
        if on_gpu and self.gpu_columns:
            level, share = self.gpu_columns
            row[level] = 1.0
            row[share] = math.log(candidate.gpus_per_pod)
        else:
            row[1] = math.log(max(candidate.pod_cores, 1))
        present = [
            (key, candidate.features.get(key))
            for key in self.keys
            if (key, candidate.features.get(key)) in self.index
        ]
        for pair in present:
            row[self.index[pair]] = 1.0
            if on_gpu and pair in self.gpu_index:
                row[self.gpu_index[pair]] = 1.0
        for first, second in itertools.combinations(present, 2):
            column = self.pairs.get((first, second))
            twin = self.gpu_pairs.get((first, second)) if on_gpu else None
            if twin is not None:
                row[twin] = 1.0
            if column is not None:
                row[column] = 1.0
        row[self.threads_column] = oversubscribed(candidate)
        return row

    def prior(
        self, effect_sd: float = EFFECT_PRIOR_SD, pair_sd: float = PAIR_PRIOR_SD
    ) -> tuple[np.ndarray, np.ndarray]:
        """The prior's mean and precisions (a diagonal), at these scales of effects."""
        mean = np.zeros(self.width)
        sds = np.full(self.width, pair_sd)
        sds[0], sds[1] = LEVEL_PRIOR_SD, CORES_PRIOR[1]
        mean[1] = CORES_PRIOR[0]
        for column in (*self.index.values(), *self.gpu_index.values()):
            sds[column] = effect_sd
        mean[self.threads_column], sds[self.threads_column] = OVERSUBSCRIBED_PRIOR
        if self.gpu_columns:
            level, share = self.gpu_columns
            sds[level] = GPU_LEVEL_PRIOR_SD
            mean[share], sds[share] = GPU_SHARE_PRIOR
            if BATCHING in self.gpu_index:
                mean[self.gpu_index[BATCHING]] = GPU_BATCHING_PRIOR_MEAN
        return mean, 1 / sds**2


def log_interval(low: float | None, high: float | None) -> tuple[float, float] | None:
    """What a capacity range says of log capacity: (at least, at most); None if nothing."""
    if not low and not high:
        return None
    return (
        math.log(low) if low else -math.inf,
        math.log(high) if high and (not low or high > low) else math.inf,
    )


def _truncated(mean: float, sd: float, low: float, high: float, u: float) -> float:
    """A draw (from uniform u) of N(mean, sd) restricted to [low, high], by its inverse CDF."""
    a = _NORMAL.cdf((low - mean) / sd) if math.isfinite(low) else 0.0
    b = _NORMAL.cdf((high - mean) / sd) if math.isfinite(high) else 1.0
    if b - a < 1e-12:  # the interval lies far in a tail: its nearer end
        return low if mean < low else high
    p = min(max(a + u * (b - a), 1e-12), 1 - 1e-12)
    return min(max(mean + sd * _NORMAL.inv_cdf(p), low), high)


class CapacityModel:
    """Bayesian regression of log capacity per pod on a configuration's features, fitted
    to interval observations by Gibbs sampling."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.columns = Features(space)
        self.scales = (EFFECT_PRIOR_SD, PAIR_PRIOR_SD)
        self.prior_mean, self.prior_precision_diag = self.columns.prior(*self.scales)
        self.rows: list[np.ndarray] = []
        self.bounds: list[tuple[float, float]] = []
        self.latent: list[float] = []  # the chain's current log capacity per pod of each
        # The effects' covariance given which configurations were observed (the latent
        # values do not change it), kept up to date one observation at a time.
        self._covariance = np.diag(1 / self.prior_precision_diag)
        self._cholesky: np.ndarray | None = None
        self._index = {c.name: i for i, c in enumerate(space.candidates)}
        self._all = (
            np.vstack([self.columns.row(c) for c in space.candidates])
            if space.candidates
            else np.zeros((0, self.columns.width))
        )
        self._pods = np.array([max(c.pods, 1) for c in space.candidates], dtype=float)

    def row(self, candidate: Candidate) -> np.ndarray:
        index = self._index.get(candidate.name)
        return self.columns.row(candidate) if index is None else self._all[index]

    def observe(self, candidate: Candidate, low: float | None, high: float | None) -> None:
        interval = log_interval(low, high)
        if interval is None:
            return
        offset = math.log(max(candidate.pods, 1))
        at_least, at_most = (end - offset for end in interval)
        row = self.row(candidate)
        if math.isfinite(at_least) and math.isfinite(at_most):
            start = (at_least + at_most) / 2
        else:
            # Where the model expects it, moved inside the bound: a bound it already
            # meets changes nothing.
            expected = float(row @ self._mean(np.array(self.latent), self._x()))
            start = min(max(expected, at_least + START_OFFSET), at_most - START_OFFSET)
        self.rows.append(row)
        self.bounds.append((at_least, at_most))
        self.latent.append(start)
        self._cholesky = None
        count = len(self.rows)
        if count >= RESCALE_FROM and (count - RESCALE_FROM) % RESCALE_EVERY == 0:
            self.rescale()
            return
        # Sherman-Morrison: the covariance with one more row of precision x x' / sd^2.
        shared = self._covariance @ row
        self._covariance -= np.outer(shared, shared) / (OBSERVATION_SD**2 + row @ shared)

    def rescale(self) -> None:
        """Choose the scales of the effects that make the chain's current log capacities
        most likely, and refit the covariance under them."""
        x, y = self._x(), np.array(self.latent)
        best, best_scales = -math.inf, self.scales
        for scales in itertools.product(EFFECT_SCALES, PAIR_SCALES):
            mean, precision = self.columns.prior(*scales)
            residual = y - x @ mean
            covariance = (x / precision) @ x.T + OBSERVATION_SD**2 * np.eye(len(y))
            cholesky = np.linalg.cholesky(covariance)
            whitened = np.linalg.solve(cholesky, residual)
            likelihood = -0.5 * whitened @ whitened - np.log(np.diag(cholesky)).sum()
            if likelihood > best:
                best, best_scales = likelihood, scales
        self.scales = best_scales
        self.prior_mean, self.prior_precision_diag = self.columns.prior(*best_scales)
        precision = np.diag(self.prior_precision_diag) + x.T @ x / OBSERVATION_SD**2
        self._covariance = np.linalg.inv(precision)
        self._cholesky = None

    def _posterior_covariance(self) -> tuple[np.ndarray, np.ndarray]:
        """The effects' covariance and its Cholesky factor."""
        if self._cholesky is None:
            self._covariance = (self._covariance + self._covariance.T) / 2
            self._cholesky = np.linalg.cholesky(self._covariance)
        return self._covariance, self._cholesky

    def _x(self) -> np.ndarray:
        return np.vstack(self.rows) if self.rows else np.zeros((0, self.columns.width))

    def _mean(self, latent: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The effects' mean given the latent log capacities of the rows x."""
        covariance, _ = self._posterior_covariance()
        weighted = self.prior_precision_diag * self.prior_mean + x.T @ latent / OBSERVATION_SD**2
        return np.asarray(covariance @ weighted)

    def sample(self, rng: np.random.Generator, sweeps: int = SWEEPS) -> np.ndarray:
        """One draw of the effects from the posterior, the chain advanced `sweeps`: each
        observation's log capacity is drawn inside its interval from what the others say
        of it (the effects integrated out: a collapsed sampler, which moves freely even
        where one observation alone decides an effect), then the effects given them all."""
        covariance, cholesky = self._posterior_covariance()
        x = self._x()
        latent = np.array(self.latent)
        if self.rows:
            hat = x @ covariance @ x.T / OBSERVATION_SD**2
            leverage = np.clip(np.diag(hat), 0.0, 1 - 1e-9)
            fitted = x @ self._mean(latent, x)
            spread = OBSERVATION_SD / np.sqrt(1 - leverage)
            for _ in range(sweeps):
                uniforms = rng.random(len(self.rows))
                for i, (low, high) in enumerate(self.bounds):
                    # What the other observations predict of this one (leave one out).
                    others = (fitted[i] - leverage[i] * latent[i]) / (1 - leverage[i])
                    new = _truncated(float(others), float(spread[i]), low, high, uniforms[i])
                    fitted += hat[:, i] * (new - latent[i])
                    latent[i] = new
            self.latent = latent.tolist()
        return self._mean(latent, x) + cholesky @ rng.standard_normal(self.columns.width)

    def mean(self, rng: np.random.Generator, sweeps: int = MEAN_SWEEPS) -> np.ndarray:
        """The effects' posterior mean, averaged over the chain's next sweeps."""
        x = self._x()
        draws = [self._mean(np.array(self.latent), x)]
        for _ in range(sweeps):
            self.sample(rng, sweeps=1)
            draws.append(self._mean(np.array(self.latent), x))
        return np.asarray(np.mean(draws, axis=0))

    def predict(self, candidates: Sequence[Candidate], effects: np.ndarray) -> np.ndarray:
        """Capacity (requests/s) of each configuration under these effects."""
        rows, pods = self._rows_of(candidates)
        return np.asarray(np.exp(np.minimum(rows @ effects, 50.0)) * pods)

    def _rows_of(self, candidates: Sequence[Candidate]) -> tuple[np.ndarray, np.ndarray]:
        """The feature rows and serving pods of these configurations."""
        indices = [self._index.get(c.name, -1) for c in candidates]
        if all(i >= 0 for i in indices):
            return self._all[indices], self._pods[indices]
        rows = np.vstack([self.row(c) for c in candidates])
        return rows, np.array([max(c.pods, 1) for c in candidates], dtype=float)

    def improvement_probabilities(
        self,
        candidates: Sequence[Candidate],
        goal: Goal,
        incumbent: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """For each configuration, the posterior probability that it scores better than
        `incumbent` (its capacity over what it would take, whole nodes and all)."""
        effects = self.mean(rng)
        covariance, _ = self._posterior_covariance()
        rows, pods = self._rows_of(candidates)
        means = rows @ effects + np.log(pods)
        sds = np.sqrt(np.einsum("ij,jk,ik->i", rows, covariance, rows) + OBSERVATION_SD**2)
        chances = np.zeros(len(candidates))
        for i, c in enumerate(candidates):
            needed = goal.capacity_to_beat(c.price, incumbent)
            if needed is None:
                continue
            if needed <= 0:
                chances[i] = 1.0
                continue
            chances[i] = 1 - _NORMAL.cdf((math.log(needed) - means[i]) / sds[i])
        return chances

    def choose(
        self,
        left: Sequence[Candidate],
        goal: Goal,
        rng: np.random.Generator,
        exploit: bool = False,
    ) -> Candidate:
        """The configuration one posterior draw prices cheapest (Thompson sampling); with
        `exploit`, the one the posterior's mean prices cheapest (for the last trials)."""
        effects = self.mean(rng) if exploit else self.sample(rng)
        capacities = self.predict(left, effects)
        scores = [
            goal.score(c.price, float(capacity))
            for c, capacity in zip(left, capacities, strict=True)
        ]
        return left[int(np.argmin(scores))]
