"""Conformance kit for ODAHU batch-inference predictors (Open Inference Protocol / KServe V2).

The package holds one engine used by both the pytest plugin and the ``odahu-conformance`` CLI:
strict JSON loading (:mod:`conformance.strictjson`), schemas (:mod:`conformance.schemas`),
semantic checks (:mod:`conformance.checks`), the multiplier oracle (:mod:`conformance.oracle`),
the comparator (:mod:`conformance.compare`), the platform's validate step done strictly
(:mod:`conformance.validate`) and golden fixtures (:mod:`conformance.goldens`).
"""

__version__ = "0.1.0"
