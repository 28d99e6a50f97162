"""Plugins: sources, transformers, anonymizers and sinks found through entry points.

Built-in and third-party pieces are registered the same way, as entry points in the groups
``etl_express.sources``, ``etl_express.transformers``, ``etl_express.anonymizers`` and
``etl_express.sinks``. A package ``etl-express-acme`` declares in its ``pyproject.toml``::

    [project.entry-points."etl_express.sources"]
    acme = "etl_express_acme:AcmeSource"

and after ``pip install etl-express-acme``::

    from etl_express import plugins

    plugins.available("sources")           # ['acme', 'files', 'onec', 'rest', 'sql']
    AcmeSource = plugins.load("sources", "acme")

Nothing is imported until :func:`load` asks for it by name, so one broken plugin (a missing
dependency, a syntax error) never stops the others from loading; :func:`inspect` reports it
with the package it came from. The installed packages' metadata is the only registry: there
is no registration by import side effect and no dictionary to edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal

from .anonymizers.base import Anonymizer
from .errors import ETLConfigError
from .sinks.base import Sink
from .sources.base import Source
from .transformers.base import Transformer

Kind = Literal["sources", "transformers", "anonymizers", "sinks"]

#: plugin kind -> (entry-point group, base class every plugin of that kind must subclass)
KINDS: dict[str, tuple[str, type]] = {
    "sources": ("etl_express.sources", Source),
    "transformers": ("etl_express.transformers", Transformer),
    "anonymizers": ("etl_express.anonymizers", Anonymizer),
    "sinks": ("etl_express.sinks", Sink),
}


class PluginError(ETLConfigError):
    """A plugin is unknown, ambiguous, or failed to load."""


@dataclass(frozen=True)
class PluginInfo:
    """One declared plugin and, after :func:`inspect`, whether it loads."""

    kind: str
    name: str
    target: str
    package: str
    version: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "target": self.target,
            "package": self.package,
            "version": self.version,
            "status": "ok" if self.ok else "broken",
            "error": self.error,
        }


def _group(kind: str) -> tuple[str, type]:
    try:
        return KINDS[kind]
    except KeyError:
        raise PluginError(
            f"unknown plugin kind {kind!r}", hint="use one of: " + ", ".join(KINDS)
        ) from None


def _package(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:  # an entry point made by hand: name the module's top-level package
        return ep.value.split(":")[0].split(".")[0], "?"
    return dist.name, dist.version or "?"


def entry_points(kind: str) -> list[metadata.EntryPoint]:
    """The declared entry points of one kind, sorted by name (nothing is imported)."""
    group, _ = _group(kind)
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)


def available(kind: str) -> list[str]:
    """Names of the declared plugins of one kind, e.g. ``available("sinks")``."""
    return sorted({ep.name for ep in entry_points(kind)})


def _describe(kind: str, ep: metadata.EntryPoint, error: str | None = None) -> PluginInfo:
    package, version = _package(ep)
    return PluginInfo(kind, ep.name, ep.value, package, version, error)


def _load_entry_point(kind: str, ep: metadata.EntryPoint) -> type:
    _, base = _group(kind)
    package, version = _package(ep)
    where = {"plugin": f"{kind}/{ep.name}", "target": ep.value, "package": f"{package} {version}"}
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must not look like an etl-express bug
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise PluginError(
            f"plugin {ep.name!r} ({kind}) failed to load: {type(exc).__name__}"
            + (f": {detail}" if detail else ""),
            where=where,
            hint=f"reinstall or upgrade package {package!r}, or uninstall it if unused",
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise PluginError(
            f"plugin {ep.name!r} ({kind}) is {obj!r}, not a subclass of {base.__name__}",
            where=where,
            hint=f"package {package!r} must point its entry point at a {base.__name__} subclass",
        )
    return obj


def load(kind: str, name: str) -> type:
    """Import and return the plugin class ``name`` of ``kind``.

    Raises :class:`PluginError` naming the available plugins when ``name`` is unknown, both
    packages when two declare the same name, and the package when its import fails.
    """
    matches = [ep for ep in entry_points(kind) if ep.name == name]
    if not matches:
        names = available(kind)
        raise PluginError(
            f"no {kind[:-1]} plugin named {name!r}",
            where={"available": ", ".join(names) or "none"},
            hint=f"use one of the available names, or pip install the package that provides {name!r}",
        )
    if len({ep.value for ep in matches}) > 1:
        packages = ", ".join(sorted(f"{_package(ep)[0]} ({ep.value})" for ep in matches))
        raise PluginError(
            f"{kind[:-1]} plugin name {name!r} is declared by more than one package: {packages}",
            hint="uninstall one of them, or import the class you want directly",
        )
    return _load_entry_point(kind, matches[0])


def create(kind: str, name: str, /, **config: Any) -> Any:
    """An instance of plugin ``name``: ``create("sinks", "postgres", table="crm.customers")``."""
    return load(kind, name)(**config)


def inspect(kind: str | None = None) -> list[PluginInfo]:
    """Every declared plugin (of ``kind``, or of all kinds), each loaded once to report
    whether it works; a broken one carries its error and its package's name."""
    infos: list[PluginInfo] = []
    for k in [kind] if kind else list(KINDS):
        for ep in entry_points(k):
            try:
                _load_entry_point(k, ep)
            except PluginError as exc:
                infos.append(_describe(k, ep, exc.what))
            else:
                infos.append(_describe(k, ep))
    return infos


__all__ = [
    "KINDS",
    "PluginError",
    "PluginInfo",
    "available",
    "create",
    "entry_points",
    "inspect",
    "load",
]
