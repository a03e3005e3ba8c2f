"""How much generated input the property tests feed a candidate: one hypothesis example is one predictor run
over a whole batch of requests (a container start costs 0.1-1 s, so requests are batched, not run one by one).

Batch sizes and file counts are primes, never round numbers: a predictor that works in chunks of 10, 50 or 100
files (or rows) and loses the remainder shows it on a prime, and passes on a multiple of its chunk."""

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
    #: conformance/suite/test_inputs.py: ``(elements, datatype)`` of the big tensors (around 65,536 and multiples
    #: of 4,096, every datatype family), the size of the one large request, the files in the many-files batch,
    #: and how many models (multiplier.txt, name, version) hypothesis draws besides the fixed ones.
    big: tuple[tuple[int, str], ...] = (
        (65535, "INT32"), (65536, "UINT8"), (65537, "FP32"), (65537, "INT64"), (65535, "UINT64"),
        (69631, "FP16"), (69633, "INT8"), (69633, "UINT32"), (65536, "FP64"), (131073, "INT16"), (131071, "UINT16"))
    large: int = 1_000_000
    files: int = 307
    drawn_models: int = 2

    @property
    def requests(self) -> int:
        return self.runs * self.batch


PROFILES = {
    "dev": Profile("dev", runs=4, batch=53, drawn_models=1),
    "ci": Profile("ci", runs=20, batch=53),
    # fewer requests per run, bigger tensors (up to 64 elements, 4 tensors)
    "thorough": Profile("thorough", runs=150, batch=17, max_tensors=4, max_elements=64,
                        big=Profile.big + ((262143, "FP32"), (262145, "UINT32"), (1048577, "INT64"), (4097, "FP16")),
                        large=4_000_000, files=1201, drawn_models=12),
}
