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


def __getattr__(name: str):  # PEP 562: loaded on first use
    """``wsolbench.runs`` / ``record`` / ``per_image`` (the store as data) without
    importing pandas for every ``import wsolbench`` (the command line's)."""
    if name in ("runs", "record", "per_image"):
        from wsolbench import results

        return getattr(results, name)
    raise AttributeError(f"module 'wsolbench' has no attribute {name!r}")
