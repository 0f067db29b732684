"""``edgekit bench --remote``: run the benchmark on the device itself over SSH.

The device needs only ``pip install 'edgekit[runtime]'`` (no torch), ``tar`` and an SSH
server. The artifacts (and the data file, and a target YAML given by path) travel as one
tar stream over the SSH connection into a fresh temporary folder there; the device's own
``edgekit bench --on-device`` measures them, so the results carry the device's CPU,
libraries and the label *measured-on-device*; the results file comes back over the same
connection and the folder is removed.

Plain ``ssh`` is used on purpose: it honours the user's ``~/.ssh/config`` (keys, ports,
jump hosts) and needs no Python SSH library. ``BatchMode`` makes a missing key an error
instead of a password prompt that would hang a CI job.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.artifact import expand_bundle, read_manifest
from edgekit.bench.results import SCHEMA
from edgekit.errors import EdgekitError

_CONNECT_TIMEOUT_S = 15
_BENCH_TIMEOUT_S = 4 * 3600
_UPLOAD_TIMEOUT_S = 1800


class RemoteError(EdgekitError):
    """The device could not be reached, or the benchmark there failed."""


@dataclass(frozen=True)
class RemoteHost:
    destination: str  # user@host, a Host alias from ~/.ssh/config, or ssh://user@host:port
    # How to start edgekit there, as sh words: "~/venv/bin/edgekit" or "python3 -m edgekit".
    # Passed to the remote sh unquoted on purpose, so that ~ and $HOME expand there.
    edgekit_command: str = "edgekit"
    ssh_options: tuple[str, ...] = ()  # extra `-o Key=Value` options for ssh
    keep: bool = False  # leave the remote folder in place (for debugging)

    def __post_init__(self) -> None:
        if not self.destination or self.destination.startswith("-"):
            raise RemoteError(f"--remote {self.destination!r} is not a destination: give user@host or an ssh alias.")

    def ssh_argv(self, script: str) -> list[str]:
        """ssh running ``script`` under ``sh -c``: the same shell whatever the user's login shell
        (bash, fish, csh) is, and the login shell only has to parse one single-quoted word."""
        options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={_CONNECT_TIMEOUT_S}",
                   "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]  # fmt: skip
        for option in self.ssh_options:
            options += ["-o", option]
        return ["ssh", *options, "--", self.destination, "sh -c " + shlex.quote(script)]

    def run(self, script: str, what: str, timeout: float = 300) -> str:
        """Run a POSIX sh script on the device; raise a RemoteError that says what failed."""
        try:
            proc = subprocess.run(self.ssh_argv(script), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{what} on {self.destination} took longer than {timeout:.0f} s.") from None
        if proc.returncode == 255:  # ssh's own failure: connection, authentication, host key
            raise RemoteError(
                f"Could not reach {self.destination} over SSH: {proc.stderr.strip()}\n"
                "Check that `ssh <destination> true` works without a password prompt (key-based login; "
                "BatchMode is on), or pass options with --ssh-option (e.g. Port=2222, IdentityFile=...)."
            )
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
            raise RemoteError(f"{what} on {self.destination} failed (exit {proc.returncode}):\n{tail}")
        return proc.stdout


@dataclass(frozen=True)
class RemoteBenchOptions:
    target: str = "host"
    threads: int | None = None
    runs: int = 200
    warmup: int = 20
    rounds: int = 1
    shapes: bool = True


def _upload_plan(artifacts: list[Path], data: Path | None, target: str) -> tuple[dict[str, Path], list[str]]:
    """Local path for each name in the upload, and the bench arguments that refer to them."""
    files: dict[str, Path] = {}
    arguments: list[str] = []
    for index, folder in enumerate(folder for path in artifacts for folder in expand_bundle(path)):
        read_manifest(folder)  # a wrong folder fails here, before anything is sent
        # The parent folder travels too: when two variants share a name, the device's bench
        # names them parent/name, as a local run does, so `bench compare` can match them.
        name = f"artifacts/{index:02d}/{folder.resolve().parent.name}/{folder.name}"
        files[name] = folder
        arguments.append(name)
    if data is not None:
        if not data.is_file():
            raise RemoteError(f"Data file {data} does not exist.")
        files[f"data/{data.name}"] = data
        arguments += ["--data", f"data/{data.name}"]
    if Path(target).suffix in {".yaml", ".yml"}:  # a profile file travels; a name is looked up there
        if not Path(target).is_file():
            raise RemoteError(f"Target profile file {target} does not exist.")
        files[f"targets/{Path(target).name}"] = Path(target)
        target = f"targets/{Path(target).name}"
    return files, [*arguments, "--target", target]


def _send(host: RemoteHost, files: dict[str, Path], folder: str) -> None:
    """Stream the files as one tar archive into ``folder`` on the device.

    Symlinks are followed (``dereference``): a link to a local path would dangle there.
    ssh's stderr goes to a file, not a pipe, so a chatty remote can never block the upload.
    """
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(host.ssh_argv(f"tar -x -f - -C {shlex.quote(folder)}"), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=errors)  # fmt: skip
        try:
            with tarfile.open(fileobj=proc.stdin, mode="w|", dereference=True) as archive:
                for name, path in files.items():
                    archive.add(path, arcname=name)
            proc.stdin.close()
            returncode = proc.wait(timeout=_UPLOAD_TIMEOUT_S)
        except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
            proc.kill()  # the connection died or stalled; what ssh said is in the file
            returncode = proc.wait()
        errors.seek(0)
        message = errors.read().decode(errors="replace").strip()
    if returncode != 0:
        raise RemoteError(f"Copying the artifacts to {host.destination} failed (exit {returncode}): {message}")


def _check_edgekit(host: RemoteHost) -> str:
    """The device's edgekit version, before anything is copied; a clear error when it is missing."""
    try:
        answer = host.run(f"{host.edgekit_command} --version", "Starting edgekit")
    except RemoteError as exc:
        raise RemoteError(
            f"{exc}\nedgekit could not be started on {host.destination} as `{host.edgekit_command}`. Install it there "
            "(`pip install 'edgekit[runtime]'`) and pass its full path with --remote-edgekit (e.g. "
            "~/edgekit-venv/bin/edgekit): commands over ssh run in a non-login shell, whose PATH often lacks "
            "~/.local/bin and virtual environments."
        ) from None
    version = answer.strip().split()[-1] if answer.strip() else "?"
    if version != __version__:
        raise RemoteError(
            f"{host.destination} has edgekit {version}, this machine {__version__}: install the same version on "
            "the device, so that both read the same artifact format and results schema."
        )
    return version


def benchmark_remote(
    host: RemoteHost,
    artifacts: list[Path],
    data: Path | None,
    options: RemoteBenchOptions,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Benchmark ``artifacts`` on the device behind ``host``; returns its results document."""
    if shutil.which("ssh") is None:
        raise RemoteError("--remote needs the `ssh` client on this machine (Debian: apt install openssh-client).")
    note = on_progress or (lambda _message: None)
    files, arguments = _upload_plan(artifacts, data, options.target)
    note(f"connecting to {host.destination}")
    _check_edgekit(host)
    folder = host.run('mktemp -d "${TMPDIR:-/tmp}/edgekit-bench.XXXXXX"', "Creating a work folder").strip()
    if not folder.startswith("/"):
        raise RemoteError(f"Unexpected answer from mktemp on {host.destination}: {folder!r}")
    try:
        note(f"copying {len(files)} item(s) to {host.destination}:{folder}")
        _send(host, files, folder)
        bench = ["bench", *arguments, "--on-device", "--no-budgets", "--runs", str(options.runs),
                 "--warmup", str(options.warmup), "--rounds", str(options.rounds), "--out", "results.json",
                 "--shapes" if options.shapes else "--no-shapes"]  # fmt: skip
        if options.threads:
            bench += ["--threads", str(options.threads)]
        # The pid file lets the clean-up stop a benchmark we stopped waiting for (timeout, Ctrl+C).
        command = (f"cd {shlex.quote(folder)} && echo $$ > bench.pid && exec {host.edgekit_command} "
                   + " ".join(shlex.quote(part) for part in bench))  # fmt: skip
        note(f"benchmarking on {host.destination}")
        host.run(command, "edgekit bench", timeout=_BENCH_TIMEOUT_S)
        document = _parse(host.run(f"cat {shlex.quote(folder)}/results.json", "Fetching the results"), host)
    finally:
        if not host.keep:  # a leftover folder in the device's /tmp matters less than the results
            quoted = shlex.quote(folder)
            with contextlib.suppress(RemoteError):
                host.run(f"kill $(cat {quoted}/bench.pid) 2>/dev/null; rm -rf {quoted}", "Removing the work folder")
    document["remote"] = {"destination": host.destination, "command": command, "folder": folder, "kept": host.keep}
    return document


def _parse(text: str, host: RemoteHost) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RemoteError(f"The results from {host.destination} are not valid JSON ({exc}).") from None
    if document.get("schema") != SCHEMA:
        raise RemoteError(
            f"The results from {host.destination} have schema {document.get('schema')!r}, not {SCHEMA}: "
            "install the same edgekit version on the device."
        )
    return document
