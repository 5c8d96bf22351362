"""Ledger plugins and their discovery (pluggy hooks, entry-point group ``ilptx``)."""
