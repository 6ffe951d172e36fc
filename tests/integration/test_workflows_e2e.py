"""The deploy workflow's own commands against the sandbox, and the laptop path (~/.ssh/config, agent)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.sandbox import ROOT, SB, VPS_IP, pw, pw_env, sshd_log

CO = "civic-observer"


def _substitute(value: str, inputs: dict, secrets: dict) -> str:
    def one(m: re.Match) -> str:
        kind, name = m.group(1), m.group(2)
        return str((inputs if kind == "inputs" else secrets).get(name, ""))

    return re.sub(r"\$\{\{\s*(inputs|secrets)\.([\w-]+)\s*\}\}", one, str(value))


def run_workflow_steps(
    path: Path, workdir: Path, inputs: dict, secrets: dict, skip: set[str]
) -> list[subprocess.CompletedProcess]:
    """Run a workflow's `run:` steps the way the runner would: bash -eo pipefail, step env with the
    inputs and secrets filled in, $GITHUB_ENV carried to later steps, $RUNNER_TEMP."""
    wf = yaml.safe_load(path.read_text())
    job = next(iter(wf["jobs"].values()))
    defaults = {
        k: _substitute(v["default"], {}, {}) for k, v in wf[True]["workflow_call"]["inputs"].items() if "default" in v
    }
    inputs = {**defaults, **inputs}
    runner_temp = workdir / "runner-temp"
    runner_temp.mkdir()
    github_env = workdir / "github-env"
    github_env.touch()
    env = {
        **pw_env(),
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_ENV": str(github_env),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    for k in ("PUBLICWORKS_CONFIG", "PUBLICWORKS_SSH_CONFIG", "PUBLICWORKS_HOST"):
        env.pop(k)  # the workflow sets these itself
    results = []
    for step in job["steps"]:
        if "run" not in step or step.get("name") in skip:
            continue
        step_env = {**env, **{k: _substitute(v, inputs, secrets) for k, v in (step.get("env") or {}).items()}}
        for line in github_env.read_text().splitlines():
            key, _, value = line.partition("=")
            step_env[key] = value
        script = workdir / "step.sh"
        script.write_text(step["run"])
        results.append(
            subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=workdir,
                env=step_env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        )
        assert results[-1].returncode == 0 or step is job["steps"][-2], results[-1].stdout + results[-1].stderr
    return results


def test_the_deploy_workflows_command_deploys_to_the_sandbox(vps, tmp_path):
    (tmp_path / "public-works").symlink_to(ROOT)  # what actions/checkout puts there
    secrets = {
        "ssh-key": (SB / "client" / "id_ed25519").read_text(),
        "host": VPS_IP,
        "known-hosts": (SB / "client" / "known_hosts").read_text(),
        "slack-webhook": "",
    }
    inputs = {
        "service": CO,
        "version": "a1c0ffe",
        "canary": "0",
        "config": "sandbox/services.toml",
        "public-works-ref": "v0",
    }
    results = run_workflow_steps(
        ROOT / ".github" / "workflows" / "deploy.yml", tmp_path, inputs, secrets, skip={"Install public-works"}
    )
    deploy_step = results[1]
    assert deploy_step.returncode == 0, deploy_step.stdout + deploy_step.stderr
    assert "deployed civic-observer a1c0ffe to blue" in deploy_step.stdout
    assert vps.running(CO)["civic-observer-web-blue-1"] == "a1c0ffe"
    assert vps.history()[-1].split(" | ")[1:5] == ["civic-observer", "a1c0ffe", "success", "blue"]
    assert not (tmp_path / "runner-temp" / "public-works-ssh").exists()  # the key is gone afterwards
    for r in results:
        assert "BEGIN OPENSSH PRIVATE KEY" not in r.stdout + r.stderr


def _laptop_home(tmp_path: Path, identity: bool) -> Path:
    home = tmp_path / "home"
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    shutil.copy(SB / "client" / "id_ed25519", ssh / "civic_deploy")
    os.chmod(ssh / "civic_deploy", 0o600)
    shutil.copy(SB / "client" / "known_hosts", ssh / "known_hosts")
    # The sshd also listens on 2222: known_hosts names a non-22 port as [host]:port.
    with open(ssh / "known_hosts", "a") as f:
        line = next(
            ln for ln in (SB / "client" / "known_hosts").read_text().splitlines() if ln.startswith(VPS_IP + " ")
        )
        f.write(f"[{VPS_IP}]:2222 " + " ".join(line.split()[1:3]) + "\n")
    (ssh / "config").write_text(
        "Host civic-vps\n"
        f"  HostName {VPS_IP}\n"
        "  User deploy\n"
        "  Port 2222\n" + (f"  IdentityFile {ssh / 'civic_deploy'}\n" if identity else "")
    )
    return home


def _laptop_env(home: Path, tmp_path: Path, **extra: str) -> dict:
    # services.toml names another user and port: the ssh config's Host block must win, as with `ssh`.
    cfg = tmp_path / "services.toml"
    cfg.write_text((ROOT / "sandbox" / "services.toml").read_text().replace('user = "deploy"', 'user = "nobody"'))
    env = pw_env(HOME=str(home), PUBLICWORKS_HOST="civic-vps", PUBLICWORKS_CONFIG=str(cfg))
    env.pop("PUBLICWORKS_SSH_CONFIG")
    env.pop("SSH_AUTH_SOCK", None)  # no agent unless the test starts one
    return {**env, **extra}


def test_a_laptop_with_an_ssh_config_host_alias(vps, tmp_path):
    env = _laptop_env(_laptop_home(tmp_path, identity=True), tmp_path)
    for v in ("a1c0ffe", "b2beef0"):
        r = pw("deploy", "--service", CO, "--version", v, "--canary", "0", env=env)
        assert r.code == 0, r.text
    r = pw("status", "--service", CO, env=env)
    assert r.code == 0 and "civic-observer: up, green serves b2beef0" in r.out
    r = pw("history", "--service", CO, env=env)
    assert r.code == 0 and "b2beef0  success" in r.out
    r = pw("rollback", "--service", CO, env=env)
    assert r.code == 0 and "to a1c0ffe on blue" in r.out
    assert "Accepted publickey for deploy from 10.200.0.1" in sshd_log()


def test_a_laptop_with_its_key_in_ssh_agent(vps, tmp_path):
    home = _laptop_home(tmp_path, identity=False)
    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True).stdout
    sock = re.search(r"SSH_AUTH_SOCK=([^;]+);", agent).group(1)
    pid = re.search(r"SSH_AGENT_PID=(\d+);", agent).group(1)
    try:
        subprocess.run(
            ["ssh-add", str(home / ".ssh" / "civic_deploy")],
            env={**os.environ, "SSH_AUTH_SOCK": sock},
            check=True,
            capture_output=True,
        )
        (home / ".ssh" / "civic_deploy").unlink()  # only the agent has it now
        r = pw("status", "--service", CO, env=_laptop_env(home, tmp_path, SSH_AUTH_SOCK=sock))
        assert r.code == 0, r.text
        assert "civic-observer: not deployed yet" in r.out
    finally:
        subprocess.run(["kill", pid])
