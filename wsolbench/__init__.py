"""wsolbench: one harness, one protocol, many WSOL methods."""

__version__ = "0.1.0"

# Bumped whenever a change to evaluation could change a reported number.
# 2: MaxBoxAccV2 boxes every contour, PxAP keeps the curve's first step, the
# benchmark's unrounded thresholds and mask rule, the frame (crop / resize) recorded.
PROTOCOL_VERSION = "2"

# The plugin folders (methods/, datasets/) are importable as wsolbench.methods and
# wsolbench.datasets from the first import on, discovery or not.
from wsolbench.core.registry import bind_plugin_packages  # noqa: E402

bind_plugin_packages()
