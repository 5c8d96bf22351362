"""The connector core: accounts, routing, rates, the packet switch and its pipeline.

Imports the codec and Twisted's Deferred/clock interfaces only: no sockets, no Autobahn.
"""
