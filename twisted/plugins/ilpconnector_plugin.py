"""twistd dropin: ``twistd -n ilpconnector --config etc/connector.yml``."""
from twisted.application.service import ServiceMaker

ilpconnector = ServiceMaker("ilptx connector", "ilptx.tap", "An Interledger (ILPv4) connector.", "ilpconnector")
