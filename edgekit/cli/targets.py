"""`edgekit targets list|show`: the device target profiles."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from edgekit.cli.common import console, user_errors

targets_app = typer.Typer(help="Inspect device target profiles (targets/*.yaml).", no_args_is_help=True)


@targets_app.command("list")
@user_errors
def targets_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON to stdout.")] = False,
) -> None:
    """List the known target profiles.

    **Example:** `edgekit targets list` (or `edgekit targets list --json`)
    """
    from rich.table import Table

    from edgekit.targets.profiles import list_targets, load_target

    table = Table("name", "device", "class", "arch", "cores", "RAM MB", "engines")
    rows = []
    for name in list_targets():
        t = load_target(name)
        engines = ", ".join(e.engine + (f"/{e.device}" if e.device else "") for e in t.engines)
        table.add_row(name, t.display_name, t.device_class, t.arch, str(t.cores), str(t.ram_mb), engines)
        rows.append({"name": name, "device": t.display_name, "class": t.device_class, "arch": t.arch,
                     "cores": t.cores, "ram_mb": t.ram_mb, "engines": [e.engine for e in t.engines]})  # fmt: skip
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    console.print(table)


@targets_app.command("show")
@user_errors
def targets_show(
    name: Annotated[str, typer.Argument(help="Profile name (see `edgekit targets list`) or YAML path.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the validated profile as JSON.")] = False,
) -> None:
    """Show one target profile, validated (host facts filled from this machine).

    **Example:** `edgekit targets show raspberry-pi-5`
    """
    import yaml

    from edgekit.targets.profiles import load_target

    profile = load_target(name).model_dump(mode="json")
    if as_json:
        console.print_json(json.dumps(profile))
    else:
        console.print(yaml.safe_dump(profile, sort_keys=False, allow_unicode=True), highlight=False)
