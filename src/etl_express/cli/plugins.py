"""``etl-express plugins``: list the installed sources, transformers, anonymizers and sinks."""

from __future__ import annotations

import json

import typer

from . import app
from ._output import fail, say


@app.command("plugins")
def plugins_command(
    kind: str = typer.Argument(
        None, help="Only this kind: sources, transformers, anonymizers or sinks."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per plugin."),
) -> None:
    """List every plugin declared through entry points and whether it loads.

    A broken plugin is shown with its package and the error; the others are unaffected.
    The exit code is 1 when any plugin is broken, so this doubles as an installation check.
    """
    from ..plugins import KINDS, PluginError, inspect

    if kind is not None and kind not in KINDS:
        from ..errors import ETLConfigError

        raise fail(
            ETLConfigError(f"unknown plugin kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}"),
            2,
        )
    try:
        infos = inspect(kind)
    except PluginError as exc:
        raise fail(exc, 2) from None
    if as_json:
        for info in infos:
            say(json.dumps(info.to_dict()))
    else:
        rows = [
            (i.kind, i.name, f"{i.package} {i.version}", "ok" if i.ok else f"BROKEN: {i.error}")
            for i in infos
        ]
        widths = [
            max([len(h), *(len(r[c]) for r in rows)])
            for c, h in enumerate(("KIND", "NAME", "PACKAGE"))
        ]
        say("  ".join(h.ljust(w) for h, w in zip(("KIND", "NAME", "PACKAGE"), widths)) + "  STATUS")
        for row in rows:
            say("  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[3])
    broken = [i for i in infos if not i.ok]
    if broken:
        say(
            f"{len(broken)} broken plugin(s): "
            + ", ".join(f"{i.kind}/{i.name} from {i.package}" for i in broken),
            err=True,
        )
        raise typer.Exit(1)
