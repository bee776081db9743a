"""``lynkist listen``: webhook change capture into the warehouse, within seconds.

* :mod:`pipelines.listen.receiver` — the HTTP endpoint: verify, spool (fsync), acknowledge;
* :mod:`pipelines.listen.spool` — the durable local queue beside the warehouse;
* :mod:`pipelines.listen.applier` — micro-batches from the spool into the warehouse;
* :mod:`pipelines.listen.source` — the dlt resources of one flush;
* :mod:`pipelines.listen.server` — runs them together until SIGINT/SIGTERM.

The receiver needs the optional extra ``[listen]`` (Starlette, uvicorn); the rest does not.
"""
