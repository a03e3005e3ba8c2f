"""The conformance suite: tests that run a candidate predictor and judge it against the contract.

Run it in a checkout with ``pytest`` (the reference predictor is the default candidate there), or from an
installed kit with ``pytest --pyargs conformance --predictor-cmd CMD`` / ``--predictor-image IMAGE``.
"""
