"""./dev bench — public-works' speed and safety figures, measured in one run on the sandbox VPS.

0. start-up: `publicworks --help`
1. deploy: the switch wait (Caddy's proof) against the earlier fixed wait; the wall time of a deploy
   (canary 0) against the design's bash flow over one ssh session (bench/design_flow.sh, the same remote
   steps and the same wait for Caddy), interleaved; the SSH connections one deploy opens (sshd's log)
2. rollback: from `publicworks rollback` to the new color stopped, during a canary and after a deploy
3. lock: from SIGKILL of a deploying process to the server's lock being free
4. Caddy: the design's literal snippet against `publicworks caddy`'s, through the same switches under
   the same load: failed requests, p99 and slowest (ratios: design / rendered)
5. why no drain: transport errors caused by Caddy config changes through the admin API alone (60 of them)
6. several hosts: a deploy on 1 host against the same on 3 hosts, one at a time (bench/hosts.py)

`./dev bench` runs them all; `./dev bench hosts caddy` only those parts (startup, deploy, rollback, lock,
reloads, caddy, hosts).

Tests assert only generous bounds; the figures are here.
"""

from __future__ import annotations

import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from publicworks import caddy, config, lock, remote  # noqa: E402
from publicworks.pin import cookie_value  # noqa: E402
from tests.support import scenario  # noqa: E402
from tests.support.load import Load  # noqa: E402
from tests.support.sandbox import (  # noqa: E402
    ALIAS,
    ENV,
    SITES,
    SSH_CONFIG,
    VPS,
    VPS_IP,
    kill,
    poll,
    pw,
    pw_start,
    sshd_accepted,
)

CO = "civic-observer"
GLOBAL = "{\n\tadmin localhost:2019\n\tauto_https off\n}\n"


def line(text: str = "") -> None:
    print(text, flush=True)


def bench_startup() -> None:
    """Python start-up of the console script: tasks import what they need lazily."""
    runs = []
    for _ in range(7):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "publicworks", "--help"], capture_output=True, check=True)
        runs.append(time.monotonic() - t0)
    line(f"`publicworks --help`: median {statistics.median(runs):.3f}s (goal <= 0.15 s)")


def design_flow(vps: VPS, version: str, new: str, old: str, port: int) -> tuple[float, float]:
    """The design's bash flow over one ssh session: (wall seconds, its wait for Caddy)."""
    script = (ROOT / "bench" / "design_flow.sh").read_text()
    t0 = time.monotonic()
    p = subprocess.run(
        [
            "ssh",
            "-F",
            str(SSH_CONFIG),
            "-o",
            "BatchMode=yes",
            ALIAS,
            "bash",
            "-s",
            "--",
            version,
            new,
            old,
            str(port),
            cookie_value("", f"127.0.0.1:{port}"),  # the rendered snippet's lb cookie, no secret
        ],
        input=script,
        capture_output=True,
        text=True,
        timeout=300,
    )
    wall = time.monotonic() - t0
    assert p.returncode == 0, p.stdout + p.stderr
    return wall, float(re.search(r"caddy_wait=([\d.]+)", p.stdout).group(1))


def gauge(vps: VPS, port: int) -> str:
    out = vps.sh("busybox wget -q -O - http://localhost:2019/metrics")
    m = re.search(rf'upstreams_healthy{{upstream="127.0.0.1:{port}"}} (\S+)', out)
    return m.group(1) if m else "?"


def settle(vps: VPS, port: int) -> None:
    """Wait until Caddy's metric shows the idle color down: a deploy long after the previous one."""
    poll(lambda: gauge(vps, port) == "0", timeout=30, every=0.5, what=f"Caddy's metric to show {port} down")


def bench_deploy(vps: VPS) -> None:
    """Deploys back and forth, public-works and the design's bash flow interleaved, same remote steps."""
    vps.clean()
    assert pw("deploy", "--service", CO, "--version", "a1c0ffe", "--canary", "0").code == 0
    ours, proofs, conns, theirs, their_waits, quick = [], [], [], [], [], []
    asked = 0  # proofs that came from asking Caddy's site (the rest: its health metric)
    serving = "blue"
    port = {"blue": 8888, "green": 8889}
    # Caddy refreshes its metric every 10 s: start each deploy at a different moment of that cycle, as a
    # deploy in real life does (the same moments for both flows).
    rng = random.Random(7)
    offsets = [rng.uniform(0, 10) for _ in range(9)]
    for i, v in enumerate(("b2beef0", "c3d00d0", "a1c0ffe") * 3):
        for runner in ("public-works", "design"):
            new = "green" if serving == "blue" else "blue"
            settle(vps, port[new])
            time.sleep(offsets[i])
            if runner == "design":
                wall, wait = design_flow(vps, v, new, serving, port[new])
                theirs.append(wall)
                their_waits.append(wait)
            else:
                before = sshd_accepted()
                r = pw("deploy", "--service", CO, "--version", v, "--canary", "0")
                assert r.code == 0, r.text
                ours.append(r.seconds)
                proofs.append(float(re.search(r"Caddy saw \w+ healthy ([\d.]+)s after", r.out).group(1)))
                asked += "(Caddy routed to it" in r.out
                conns.append(sshd_accepted() - before)
            serving = new
    for v in ("b2beef0", "c3d00d0", "a1c0ffe"):  # back to back: the idle color stopped seconds ago
        r = pw("deploy", "--service", CO, "--version", v, "--canary", "0")
        assert r.code == 0, r.text
        quick.append(float(re.search(r"Caddy saw \w+ healthy ([\d.]+)s after", r.out).group(1)))
    fixed = caddy.parse_duration(config.load().caddy.health_interval) + 0.5
    med = statistics.median
    line(
        f"switch wait (healthy through the tunnel -> Caddy's proof), {len(proofs)} deploys: median "
        f"{med(proofs):.2f}s (min {min(proofs):.2f}, max {max(proofs):.2f}); the earlier fixed wait at the same "
        f"interval: {fixed:.2f}s; ratio {med(proofs) / fixed:.2f} (goal <= 0.60); proven by asking Caddy's site: "
        f"{asked} of {len(proofs)}"
    )
    line(
        f"  back to back (the idle color stopped < 10 s earlier): median "
        f"{med(quick):.2f}s ({', '.join(f'{x:.1f}' for x in quick)})"
    )
    line(
        f"deploy wall time (canary 0, with migration): public-works median {med(ours):.2f}s, the design's bash "
        f"flow over one ssh session median {med(theirs):.2f}s: ratio {med(ours) / med(theirs):.2f} (goal <= 1.10); "
        f"without the wait for Caddy: {med([o - p for o, p in zip(ours, proofs, strict=True)]):.2f}s vs "
        f"{med([t - w for t, w in zip(theirs, their_waits, strict=True)]):.2f}s"
    )
    line(f"SSH connections per deploy (sshd's log): {sorted(set(conns))}")


def bench_rollback(vps: VPS) -> None:
    during = []
    for _ in range(3):
        vps.clean()
        assert pw("deploy", "--service", CO, "--version", "a1c0ffe", "--canary", "0").code == 0
        p = pw_start("deploy", "--service", CO, "--version", "b2beef0", "--canary", "120")
        poll(lambda: (vps.state(CO) or {}).get("canary"), timeout=30, what="the canary")
        t0 = time.monotonic()
        pw("rollback", "--service", CO)
        poll(lambda: "civic-observer-web-green-1" not in vps.running(CO), every=0.02, what="green to stop")
        during.append(time.monotonic() - t0)
        p.wait(timeout=60)
    after = []
    for _ in range(3):
        vps.clean()
        for v in ("a1c0ffe", "b2beef0"):
            assert pw("deploy", "--service", CO, "--version", v, "--canary", "0").code == 0
        t0 = time.monotonic()
        assert pw("rollback", "--service", CO).code == 0
        after.append(time.monotonic() - t0)
    line(
        f"rollback during a canary, call -> new color stopped: median {statistics.median(during):.2f}s "
        f"({', '.join(f'{x:.2f}' for x in during)})"
    )
    line(
        f"rollback after a deploy, call -> previous version serving, new one stopped: median "
        f"{statistics.median(after):.2f}s ({', '.join(f'{x:.2f}' for x in after)}) — includes waiting for "
        "Caddy's proof that it routes to the restarted color"
    )


def bench_lock(vps: VPS, server: config.ServerConfig) -> None:
    freed = []
    r = remote.connect(server)
    try:
        for _ in range(3):
            vps.clean()
            p = pw_start("deploy", "--service", CO, "--version", "5103000", "--canary", "0")
            poll(lambda: lock.probe(r, server.lock_file).held, what="the lock")
            kill(p)
            t0 = time.monotonic()
            poll(lambda: not lock.probe(r, server.lock_file).held, timeout=10, every=0.005, what="the lock to free")
            freed.append(time.monotonic() - t0)
    finally:
        r.close()
    line(f"lock free after SIGKILL of the deploy: {', '.join(f'{x * 1000:.0f} ms' for x in freed)}")


def admin(server: config.ServerConfig):
    r = remote.connect(server)
    return r, r.http(timeout=10)


def load_caddyfile(server: config.ServerConfig, text: str) -> None:
    r, client = admin(server)
    try:
        resp = client.post("http://localhost:2019/load", content=text, headers={"Content-Type": "text/caddyfile"})
        assert resp.status_code == 200, resp.text
    finally:
        client.close()
        r.close()


def bench_caddy(vps: VPS, cfg: config.Config) -> None:
    design = GLOBAL + (ROOT / "sandbox" / "caddy" / "design.caddy").read_text()
    rendered = GLOBAL + caddy.render(cfg) + (ROOT / "sandbox" / "caddy" / "sites.caddy").read_text()
    results = {}
    try:
        for name, text in (("design's snippet", design), ("rendered snippet", rendered)):
            load_caddyfile(cfg.server, text)
            rep = scenario.switches_under_load(vps)
            sw = [s for w in scenario.windows(rep).values() for s in w]  # every switch and its aftermath
            results[name] = (rep, sw)
            line(f"Caddy, {name}: {rep.describe()}")
            for wname, w in scenario.windows(rep).items():
                line(f"    {wname} switch: {rep.describe(w)}")
    finally:
        load_caddyfile(cfg.server, rendered)
    (d, dsw), (r, rsw) = results["design's snippet"], results["rendered snippet"]
    line(
        f"Caddy ratios design/rendered: failed requests {len(d.failures)}/{len(r.failures)}, "
        f"p99 during switches {d.p99(dsw) / max(r.p99(rsw), 1e-9):.1f}x, "
        f"slowest {d.slowest(d.samples) / max(r.slowest(r.samples), 1e-9):.1f}x"
    )


def bench_reloads(vps: VPS, cfg: config.Config) -> None:
    svc = cfg.services["corkboard-django"]  # not the service under load
    vps.clean()
    assert pw("deploy", "--service", CO, "--version", "a1c0ffe", "--canary", "0").code == 0
    poll(
        lambda: "a1c0ffe" in vps.sh(f"busybox wget -q -O - --header 'Host: {SITES[CO]}' http://127.0.0.1/ || true"),
        what="Caddy to serve civic-observer",
    )
    r, client = admin(cfg.server)
    base = "http://localhost:2019"
    try:
        h = caddy.service_handlers(client.get(f"{base}/config/").json(), svc)[0][0]
        upstreams = [{"dial": d} for d in h.dials]
        one = [u for u in upstreams if caddy.port_of(u["dial"]) != svc.ports["blue"]]
        with Load(f"http://{VPS_IP}/", SITES[CO], clients=10, cookie_clients=5, rate=250) as load:
            time.sleep(2)
            for _ in range(30):  # a race: it takes many changes to show reliably
                client.patch(f"{base}{h.url}/upstreams", json=one)
                time.sleep(0.5)
                client.patch(f"{base}{h.url}/upstreams", json=upstreams)
                time.sleep(0.5)
            time.sleep(1)
    finally:
        client.close()
        r.close()
    line(f"60 admin-API config changes (another service's upstreams), nothing stopped: {load.report().describe()}")


def main() -> None:
    import os

    from bench.hosts import bench_hosts

    os.environ.update(ENV)
    cfg = config.load()
    vps = VPS()
    parts = {
        "startup": bench_startup,
        "deploy": lambda: bench_deploy(vps),
        "rollback": lambda: bench_rollback(vps),
        "lock": lambda: bench_lock(vps, cfg.server),
        "reloads": lambda: bench_reloads(vps, cfg),
        "caddy": lambda: bench_caddy(vps, cfg),
        "hosts": lambda: bench_hosts(line),
    }
    chosen = sys.argv[1:] or list(parts)
    unknown = [p for p in chosen if p not in parts]
    if unknown:
        sys.exit(f"bench: unknown part(s) {', '.join(unknown)}; the parts: {', '.join(parts)}")
    line(f"public-works bench, {time.strftime('%Y-%m-%d %H:%M:%S')} (sandbox VPS at {VPS_IP})")
    for name in chosen:
        parts[name]()
    vps.clean()


if __name__ == "__main__":
    main()
