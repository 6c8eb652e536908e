"""Plugin registries for methods and datasets.

Plugins register themselves with a decorator (as timm registers models). They are
discovered from the plugin folders (installed as ``wsolbench.methods`` and
``wsolbench.datasets``) and from installed distributions exposing the entry-point
groups ``wsolbench.methods`` / ``wsolbench.datasets``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import types
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from wsolbench.core.errors import UserError
from wsolbench.core.paths import SOURCE_DIR

T = TypeVar("T")


class Registry:
    """Name -> plugin class, filled by ``register`` and by discovery."""

    def __init__(self, kind: str, folder: str) -> None:
        self.kind = kind
        self.package = f"wsolbench.{folder}"
        self.folder = folder
        self.group = f"wsolbench.{folder}"
        self._items: dict[str, Any] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            obj.name = name  # type: ignore[attr-defined]
            self._items[name] = obj
            return obj

        return deco

    def discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        pkg = _plugin_package(self.package, self.folder)
        for info in pkgutil.iter_modules(pkg.__path__, prefix=self.package + "."):
            if not info.name.rsplit(".", 1)[-1].startswith("_"):
                importlib.import_module(info.name)
        for ep in entry_points(group=self.group):
            ep.load()  # importing the module runs its register decorators

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._items)

    def get(self, name: str) -> Any:
        self.discover()
        if name not in self._items:
            known = ", ".join(self.names()) or "none"
            raise UserError(f"unknown {self.kind} '{name}' (known: {known})")
        return self._items[name]


def _plugin_package(package: str, folder: str) -> types.ModuleType:
    """Import a plugin folder as a namespace package.

    An installed wheel has it at ``wsolbench/<folder>``. setuptools' editable finder
    does not resolve nested namespace packages, so for a source checkout the
    top-level folder is bound under the package name by hand.
    """
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError:
        path = SOURCE_DIR / folder
        if not path.is_dir():
            raise
        module = types.ModuleType(package)
        module.__path__ = [str(path)]
        sys.modules[package] = module
        return module


def bind_plugin_packages() -> None:
    """Make ``wsolbench.methods`` / ``wsolbench.datasets`` importable (no plugin is
    imported), so a plugin module can be imported directly."""
    for folder in ("methods", "datasets"):
        _plugin_package(f"wsolbench.{folder}", folder)


METHODS = Registry("method", "methods")
DATASETS = Registry("dataset", "datasets")

register_method = METHODS.register
register_dataset = DATASETS.register
