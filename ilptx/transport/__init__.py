"""Transports for ledger plugins.

* :mod:`ilptx.transport.btp_session` — one BTP connection's request/response engine, sans-IO
  (frames in, frames out, an injected clock).
* :mod:`ilptx.transport.btp_ws` — Autobahn WebSocket protocols/factories adapting it.
* :mod:`ilptx.transport.endpoints` — listening/connecting endpoints and TLS settings.
* :mod:`ilptx.transport.auth_backoff` — the per-source backoff on failed BTP logins.
"""
