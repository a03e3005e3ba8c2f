"""How much generated input the property tests feed a candidate: one hypothesis example is one predictor run
over a whole batch of requests (a container start costs 0.1-1 s, so requests are batched, not run one by one)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """``runs`` predictor runs of ``batch`` generated requests each; each request has at most ``max_tensors``
    tensors of at most ``max_elements`` elements. Hypothesis caps how much one example may draw, so a big batch
    holds small tensors (a batch over the cap is thrown away and drawn again, which costs seconds)."""

    name: str
    runs: int
    batch: int
    max_tensors: int = 3
    max_elements: int = 8

    @property
    def requests(self) -> int:
        return self.runs * self.batch


PROFILES = {
    "dev": Profile("dev", runs=4, batch=50),
    "ci": Profile("ci", runs=20, batch=52),
    # fewer requests per run, bigger tensors (up to 64 elements, 4 tensors)
    "thorough": Profile("thorough", runs=150, batch=16, max_tensors=4, max_elements=64),
}
