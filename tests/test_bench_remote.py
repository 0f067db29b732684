"""``edgekit bench --remote`` against a real OpenSSH server started on loopback by the test."""

import getpass
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from edgekit.bench.remote import RemoteBenchOptions, RemoteError, RemoteHost, benchmark_remote
from edgekit.bench.results import read_results

SSHD = Path("/usr/sbin/sshd")
REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {process.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("sshd did not start listening")


@pytest.fixture(scope="module")
def loopback_sshd(tmp_path_factory):
    """An sshd on 127.0.0.1 that lets this user in with a key made for the test."""
    if not SSHD.is_file() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("needs Debian's openssh-server and openssh-client (.ci/run installs them)")
    home = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / key)], check=True)
    (home / "authorized_keys").write_text((home / "client_key.pub").read_text())
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    port = _free_port()
    config = home / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host_key'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nPidFile {home / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nLogLevel ERROR\n"
    )
    host_key = (home / "host_key.pub").read_text().split()
    (home / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, process)
        options = (
            f"Port={port}",
            f"IdentityFile={home / 'client_key'}",
            "IdentitiesOnly=yes",
            f"UserKnownHostsFile={home / 'known_hosts'}",
            "StrictHostKeyChecking=yes",
            "LogLevel=ERROR",
        )
        host = RemoteHost(f"{getpass.getuser()}@127.0.0.1", f"{sys.executable} -m edgekit", options)
        try:
            host.run("true", "A first login")
        except RemoteError as exc:
            pytest.skip(f"the loopback sshd refused this user's login: {exc}")
        yield host
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_remote_bench_runs_on_the_device_and_brings_results_back(loopback_sshd, tiny_artifact, tiny_data, tmp_path):
    profile = tmp_path / "host.yaml"  # a profile given by path travels with the artifacts
    shutil.copy(REPO / "targets" / "host.yaml", profile)
    options = RemoteBenchOptions(target=str(profile), runs=12, warmup=2, rounds=2, shapes=False)
    document = benchmark_remote(loopback_sshd, [tiny_artifact], tiny_data, options)
    (variant,) = document["variants"]
    assert variant["name"] == tiny_artifact.name and variant["latency_ms"]["count"] == 24
    assert variant["accuracy"] is not None, "the data file travelled with its labels"
    assert document["target"]["mode"] == "measured-on-device"
    remote = document["remote"]
    assert remote["destination"].endswith("@127.0.0.1") and "--on-device" in remote["command"]
    assert not Path(remote["folder"]).exists(), "the work folder on the device is removed"


def test_remote_bench_from_the_cli(loopback_sshd, tiny_artifact, tiny_data, tmp_path):
    out, report = tmp_path / "remote.json", tmp_path / "remote.md"
    ssh_options = [arg for option in loopback_sshd.ssh_options for arg in ("--ssh-option", option)]
    command = [sys.executable, "-m", "edgekit", "bench", str(tiny_artifact), "--data", str(tiny_data),
               "--remote", loopback_sshd.destination, "--remote-edgekit", loopback_sshd.edgekit_command,
               *ssh_options, "--runs", "10", "--warmup", "1", "--no-shapes", "--out", str(out),
               "--report", str(report)]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert read_results(out)["remote"]["destination"] == loopback_sshd.destination
    assert "measured-on-device" in report.read_text()


def test_a_missing_remote_edgekit_is_a_clear_error_and_writes_nothing(loopback_sshd, tiny_artifact, tmp_path):
    broken = RemoteHost(loopback_sshd.destination, "no-such-edgekit", loopback_sshd.ssh_options)
    with pytest.raises(RemoteError, match="could not be started .* --remote-edgekit"):
        benchmark_remote(broken, [tiny_artifact], None, RemoteBenchOptions(runs=10, shapes=False))
    out = tmp_path / "never.json"
    ssh_options = [arg for option in loopback_sshd.ssh_options for arg in ("--ssh-option", option)]
    proc = subprocess.run([sys.executable, "-m", "edgekit", "bench", str(tiny_artifact), "--remote",
                           loopback_sshd.destination, "--remote-edgekit", "no-such-edgekit", *ssh_options,
                           "--out", str(out)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode != 0 and "no-such-edgekit" in proc.stderr
    assert not out.exists()


def test_a_home_relative_edgekit_and_symlinked_artifacts_work(loopback_sshd, tiny_artifact, tmp_path):
    """`~/…` expands on the device, and a symlinked artifact travels as its files, not a link."""
    home = Path(loopback_sshd.run('printf %s "$HOME"', "Finding the home folder"))
    launcher = Path(tempfile.mkdtemp(prefix=".edgekit-test-", dir=home))
    try:
        script = launcher / "edgekit"
        script.write_text(f'#!/bin/sh\nexec {sys.executable} -m edgekit "$@"\n')
        script.chmod(0o755)
        link = tmp_path / "linked-artifact"
        link.symlink_to(tiny_artifact, target_is_directory=True)
        host = RemoteHost(loopback_sshd.destination, f"~/{launcher.name}/edgekit", loopback_sshd.ssh_options, keep=True)
        document = benchmark_remote(host, [link], None, RemoteBenchOptions(runs=10, warmup=1, shapes=False))
        assert document["variants"][0]["name"] == "linked-artifact"
        folder = Path(document["remote"]["folder"])  # kept: on loopback it is readable here
        (sent,) = folder.glob("artifacts/*/*/linked-artifact")
        assert not sent.is_symlink() and (sent / "model.onnx").is_file(), "a link would dangle on a real device"
        shutil.rmtree(folder)
    finally:
        shutil.rmtree(launcher)


def test_a_destination_that_looks_like_an_option_is_refused():
    with pytest.raises(RemoteError, match="not a destination"):
        RemoteHost("-oProxyCommand=touch /tmp/owned")


def test_an_unreachable_device_says_how_to_fix_it(tiny_artifact):
    host = RemoteHost("nobody@127.0.0.1", ssh_options=(f"Port={_free_port()}", "ConnectTimeout=5"))
    with pytest.raises(RemoteError, match="Could not reach .* over SSH"):
        benchmark_remote(host, [tiny_artifact], None, RemoteBenchOptions(runs=10))


def test_pytorch_is_refused_with_remote(tiny_artifact, tiny_model_dir):
    proc = subprocess.run([sys.executable, "-m", "edgekit", "bench", str(tiny_artifact), "--pytorch",
                           str(tiny_model_dir), "--remote", "pi@device"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "without torch" in proc.stderr
