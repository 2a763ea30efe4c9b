"""What a configuration is worth, from its price and its measured capacity range. Pure.

Without a target load, configurations rank by requests per dollar at the low end of their
capacity range (shown as USD per million requests, lower is better). With a target load
(`--target-rps`), they rank by the cost per hour of serving it: the nodes needed at the low
end of the range's per-node capacity, in whole nodes with 5% headroom, plus what the
cluster costs whatever its size (GKE fee, load balancer). The high end of the range gives
the best a configuration could still turn out to be: when even that (5% over it) is no
better than what the best configuration so far is sure of, it cannot win, and measuring it
further is waste.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# A node is planned to serve at most this much under its measured capacity: the low end of
# a range is a rate that passed, and the configuration that wins a search is the one whose
# low end came out highest among many, so it is more often high than low by about the
# capacity search's resolution near the crossing (5%). Without it, the nodes recommended
# for a target would too often serve a little less than the target.
HEADROOM = 0.05
# A capacity search stopped because its range could not win must be sure of it: the high
# end of a range is a rate that failed, and a rate a few percent under the capacity fails
# now and then; a configuration is stopped only when its high end, this much higher, still
# could not win.
PRUNE_SLACK = 0.05


@dataclass(frozen=True)
class Price:
    """A configuration's price per hour: what it costs whatever its node count, and each
    serving node (its boot disk included), at the price the user will deploy at."""

    fixed_usd_per_hour: float
    node_usd_per_hour: float
    nodes: int  # nodes the configuration was measured on

    @property
    def usd_per_hour(self) -> float:
        return self.fixed_usd_per_hour + self.nodes * self.node_usd_per_hour


@dataclass(frozen=True)
class Goal:
    """What to minimise: the cost of serving target_rps, or (None) the cost of a million
    requests at full load."""

    target_rps: float | None = None

    @property
    def unit(self) -> str:
        return "USD/hour at the target" if self.target_rps else "USD per million requests"

    def nodes_needed(self, price: Price, capacity_rps: float) -> int:
        """Whole nodes that serve the target at this capacity (measured on price.nodes),
        each loaded to at most HEADROOM under its share of it."""
        assert self.target_rps is not None
        per_node = capacity_rps / price.nodes * (1 - HEADROOM)
        return max(1, math.ceil(self.target_rps / per_node - 1e-9))

    def score(self, price: Price, capacity_rps: float | None) -> float:
        """Lower is better; infinite when the capacity is unknown or nothing passed."""
        if not capacity_rps or capacity_rps <= 0:
            return math.inf
        if self.target_rps is None:
            return price.usd_per_hour / (capacity_rps * 3600) * 1e6
        nodes = self.nodes_needed(price, capacity_rps)
        return price.fixed_usd_per_hour + nodes * price.node_usd_per_hour

    def capacity_to_beat(self, price: Price, incumbent: float) -> float | None:
        """The capacity (requests/s, on price.nodes) above which a configuration at this
        price scores better than `incumbent`; None when no capacity would."""
        if not math.isfinite(incumbent):
            return 0.0
        if self.target_rps is None:
            return price.usd_per_hour * 1e6 / (incumbent * 3600)
        # The most whole nodes that still cost less than the incumbent.
        nodes = math.ceil((incumbent - price.fixed_usd_per_hour) / price.node_usd_per_hour) - 1
        if nodes < 1:
            return None
        return self.target_rps * price.nodes / (nodes * (1 - HEADROOM))

    def score_range(
        self, price: Price, low: float | None, high: float | None
    ) -> tuple[float, float]:
        """(best it can still be, what it is sure of): from the range's high and low ends;
        an open range (no failing rate yet) could still be arbitrarily good."""
        best = 0.0 if high is None else self.score(price, high)
        return best, self.score(price, low)

    def cannot_win(
        self, price: Price, low: float | None, high: float | None, incumbent: float
    ) -> bool:
        """True when even the range's high end (PRUNE_SLACK over it) is no better than the
        incumbent's score."""
        if high is None:
            return False
        best, _ = self.score_range(price, low, high * (1 + PRUNE_SLACK))
        return best >= incumbent
