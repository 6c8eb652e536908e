"""wsolbench: one harness, one protocol, many WSOL methods."""

__version__ = "0.1.0"

# Bumped whenever a change to evaluation could change a reported number.
PROTOCOL_VERSION = "1"
