"""wsolbench: one harness, one protocol, many WSOL methods."""

__version__ = "0.1.0"

# Bumped whenever a change to evaluation could change a reported number.
# 2: MaxBoxAccV2 boxes every contour, PxAP keeps the curve's first step, the
# benchmark's unrounded thresholds and mask rule, the frame (crop / resize) recorded.
PROTOCOL_VERSION = "2"
