"""The balancer in front of the replicas: smooth weighted round robin, or least connections.

Smooth WRR is nginx's algorithm: each pick adds every server's weight to its current value,
takes the largest, and subtracts the total from it, so weights 5:1:1 give a a b a c a a rather
than a a a a a b c. Least connections picks the smallest ``connections / weight`` (HAProxy's
``leastconn`` with weights), ties to the lowest index. A weight of 0 takes a server out.
"""

from __future__ import annotations

from collections.abc import Sequence

POLICIES = ("wrr", "least_conn")


class Balancer:
    """Picks a replica index for each request."""

    def __init__(self, policy: str, weights: Sequence[float]) -> None:
        if policy not in POLICIES:
            raise ValueError(f"balancer: must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.policy = policy
        self._current: list[float] = []
        self.weights: list[float] = []
        self.set_weights(weights)

    def set_weights(self, weights: Sequence[float]) -> None:
        """Replace the weights (length = number of replicas in rotation)."""
        if any(w < 0 for w in weights):
            raise ValueError(f"balancer weights must not be negative, got {list(weights)}")
        if not any(w > 0 for w in weights):
            raise ValueError("balancer: at least one weight must be positive")
        old = self._current
        self.weights = [float(w) for w in weights]
        self._current = [old[i] if i < len(old) else 0.0 for i in range(len(self.weights))]

    def pick(self, connections: Sequence[int]) -> int:
        """Index of the replica for the next request."""
        weights = self.weights
        if self.policy == "least_conn":
            best, best_load = -1, float("inf")
            for i, w in enumerate(weights):
                if w > 0:
                    load = connections[i] / w
                    if load < best_load:
                        best, best_load = i, load
            return best
        current = self._current
        total = 0.0
        best = -1
        for i, w in enumerate(weights):
            current[i] += w
            total += w
            if w > 0 and (best < 0 or current[i] > current[best]):
                best = i
        current[best] -= total
        return best
