"""Options `bench` and `serve` share: a config file, and the engines' execution providers/devices.

``--config FILE.yaml`` fills a command's options from a YAML mapping (keys are option names,
``runs`` or ``max-delay-ms``); the precedence is the usual one: the command line, then
``EDGEKIT_<COMMAND>_<OPTION>`` environment variables, then the file, then the built-in default.

``--provider`` values are parsed by ``edgekit.bench.providers`` (shared with the bench harness).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgekit.errors import EdgekitError, RecipeError


def provider_help() -> str:
    from edgekit.runtime.engines import engine_names

    return (
        "Execution provider / device, repeatable: ENGINE:VALUE[,VALUE] with ENGINE one of "
        f"{', '.join(engine_names())} (onnxruntime:CUDAExecutionProvider, openvino:GPU), or cpu, "
        "an ORT provider (cuda, dnnl, CUDAExecutionProvider…) or an OpenVINO device (GPU, NPU, AUTO)."
    )


def load_config(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """Eager ``--config`` callback: the file's values become the command's defaults (``default_map``)."""
    if value is None or ctx.resilient_parsing:
        return value
    from edgekit.yaml_files import read_yaml_mapping

    try:  # a callback runs while parsing, before the command's own error handling: say it as click does
        mapping = read_yaml_mapping(Path(value), "config file", RecipeError, "keys are option names, e.g. runs: 100")
    except EdgekitError as exc:
        raise typer.BadParameter(str(exc), ctx, param) from None
    known = {p.name: p for p in ctx.command.params if p.param_type_name == "option" and p.name != param.name}
    values: dict[str, Any] = {}
    for key, item in mapping.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise typer.BadParameter(
                f"{value}: unknown key '{key}'. Keys are this command's option names: "
                f"{', '.join(sorted(n.replace('_', '-') for n in known))}.",
                ctx,
                param,  # fmt: skip
            )
        values[name] = [str(v) for v in item] if isinstance(item, list) else item
    ctx.default_map = {**(ctx.default_map or {}), **values}
    return value


def _config_option() -> Any:
    return typer.Option(
        "--config", "-c", is_eager=True, callback=load_config, exists=True, dir_okay=False,
        help="YAML file of option values (e.g. runs: 500); env vars EDGEKIT_<COMMAND>_<OPTION> too.",
    )  # fmt: skip


# The two shared options, ready for a command's signature (`config: ConfigOption = None`).
ConfigOption = Annotated[Path | None, _config_option()]
ProviderOption = Annotated[list[str] | None, typer.Option("--provider", "-e", help=provider_help())]
