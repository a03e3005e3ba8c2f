"""How a request reaches a candidate and its answer comes back: a batch run's files, or HTTP. Each transport
yields :class:`~conformance.transport.exchange.Exchange` records, the one unit the judge examines."""
