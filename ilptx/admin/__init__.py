"""The admin API: HTTP status, balances, accounts, alerts and metrics of a running connector.

:class:`ilptx.admin.api.AdminApi` is the Klein app (the reference connector's paths and JSON
shapes); :mod:`ilptx.admin.auth` is the optional bearer token and the start-up check that
refuses to serve it beyond this machine without one; :mod:`ilptx.admin.dashboard` is the
operator dashboard at ``/dashboard/`` (its page built from ``ilptx/admin/ui/``). ``ilptx.tap`` serves it when
``adminApi: true``.
"""

from ilptx.admin.api import AdminApi
from ilptx.admin.auth import check_binding

__all__ = ["AdminApi", "check_binding"]
