"""twistd glue: ``twistd -n ilpconnector [--config FILE]``.

Without ``--config`` the connector runs on the embedded default config (a copy of
``etc/connector.yml``: two child accounts served over BTP on 127.0.0.1), with
``CONNECTOR_*`` variables overriding it key by key -- unless ``CONNECTOR_ACCOUNTS`` is set:
then, as with the reference connector, the environment alone is the config.

With ``adminApi: true`` the admin API (:mod:`ilptx.admin`) listens on
``adminApiHost:adminApiPort`` (default 127.0.0.1:7780); a non-loopback host needs
``adminApiToken``.

A bad config or an unknown plugin stops start-up with one line on stderr naming the key and
the problem, and a non-zero exit status; no traceback.
"""

from __future__ import annotations

import os
import sys
from importlib import resources

from twisted.application import strports
from twisted.application.service import MultiService, Service
from twisted.python import usage

from ilptx.admin.auth import check_binding
from ilptx.config import load_config, load_config_file, parse_config
from ilptx.errors import ConfigError

__all__ = ["Options", "makeService", "admin_service", "default_config_text"]


def default_config_text() -> str:
    """:returns: the embedded default config (identical to ``etc/connector.yml``)."""
    return resources.files("ilptx").joinpath("default-connector.yml").read_text(encoding="utf-8")


class Options(usage.Options):
    """Command-line options of the ``ilpconnector`` twistd plugin."""

    synopsis = "[--config FILE]"
    longdesc = ("Run an Interledger connector. The config file uses the reference connector's keys "
                "(ilpAddress, accounts, routes, spread, backend, ...); CONNECTOR_* environment "
                "variables override it.")
    optParameters = [
        ["config", "c", None, "YAML or JSON config file (default: the embedded default config)"],
    ]


def _fail(message: str) -> "SystemExit":
    sys.stderr.write(f"ilpconnector: config error: {message}\n")
    sys.stderr.flush()
    return SystemExit(2)


def makeService(options: Options) -> MultiService:
    """Build the connector service from ``options``.

    :raises SystemExit: (status 2) invalid config or unknown plugin, after one line on stderr.
    """
    from twisted.internet import reactor

    from ilptx.node import build_connector

    try:
        if options["config"]:
            config = load_config_file(options["config"], os.environ)
        elif "CONNECTOR_ACCOUNTS" in os.environ:
            # configured through the environment alone, as the reference connector is
            config = parse_config({}, os.environ)
        else:
            config = load_config(default_config_text(), os.environ, source="<embedded default config>")
        if config.raw["adminApi"]:
            check_binding(config.raw["adminApiHost"], config.raw.get("adminApiToken"))
        connector = build_connector(config, reactor=reactor)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    top = MultiService()
    connector.setServiceParent(top)
    if config.raw["adminApi"]:
        admin_service(connector, config).setServiceParent(top)
    return top


def admin_service(connector, config) -> Service:
    """The admin API (:mod:`ilptx.admin`) on ``tcp:<adminApiPort>:interface=<adminApiHost>``.

    :returns: a service that listens while it runs.
    """
    from ilptx.admin import AdminApi

    site = AdminApi(connector, token=config.raw.get("adminApiToken")).site()
    host = config.raw["adminApiHost"].replace("\\", "\\\\").replace(":", "\\:")
    return strports.service(f"tcp:{config.raw['adminApiPort']}:interface={host}", site)
