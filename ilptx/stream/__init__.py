"""STREAM (RFC 29) endpoints, SPSP (RFC 9) and payment pointers (RFC 26)."""
