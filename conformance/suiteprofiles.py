"""How much generated input the property tests feed a candidate: one hypothesis example is one predictor run
over a whole batch of requests (a container start costs 0.1-1 s, so requests are batched, not run one by one)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """``runs`` predictor runs of ``batch`` generated requests each."""

    name: str
    runs: int
    batch: int

    @property
    def requests(self) -> int:
        return self.runs * self.batch


PROFILES = {
    "dev": Profile("dev", runs=4, batch=50),
    "ci": Profile("ci", runs=16, batch=70),
    "thorough": Profile("thorough", runs=100, batch=100),
}
