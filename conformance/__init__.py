"""Conformance kit for ODAHU batch-inference predictors (Open Inference Protocol / KServe V2), in
batch and online (a V2 server, over REST and gRPC).

One core serves both the pytest plugin and the ``odahu-conformance`` CLI. The package is layered; a module
imports only from its own layer or the ones listed before it:

- :mod:`conformance.contract`: requirement IDs and levels, the :class:`~conformance.contract.findings.Finding` record.
- :mod:`conformance.v2`: the V2 protocol read strictly: datatypes, strict JSON, schemas, tensors, documents.
- :mod:`conformance.odahu`: the platform's side: models, archives, manifests, the platform's own validate rules.
- :mod:`conformance.transport`: how a request reaches a candidate and its answer comes back: the
  :class:`~conformance.transport.exchange.Exchange` every transport yields, the HTTP client, the gRPC stubs, codec
  and client (``grpc_v2``, loaded for a gRPC target only).
- :mod:`conformance.oracle`: what a model owes a request (the multiplier's oracle; recorded goldens, a reference
  function or the declared signature for other models), and the comparators.
- :mod:`conformance.generate`: curated goldens, hypothesis strategies, random requests, the shrinker.
- :mod:`conformance.run`: workspaces, staging, runners (local, container), what a run leaves behind, the candidate.
- :mod:`conformance.online`: a V2 server's own requirements (H-*): the checks of each exchange and of its routes.
- :mod:`conformance.judge`: one named check per run-level requirement, and the judging of a whole batch.
- :mod:`conformance.report`: the requirement report (JSON, Markdown) built from the judge's findings.
- :mod:`conformance.record`: golden pairs recorded from an approved predictor (``fixtures record``).
- :mod:`conformance.plugin`, :mod:`conformance.cli`, :mod:`conformance.job`, :mod:`conformance.arguments`: the front
  ends, and the option values they check alike.
- :mod:`conformance.suite`: the conformance tests themselves, run by the plugin.
"""

__version__ = "0.2.0"
