"""Who runs public-works: recorded in the history, the lock holder and Slack messages."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping


def run_url(env: Mapping[str, str] = os.environ) -> str | None:
    """The GitHub Actions run's URL, when running there."""
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env['GITHUB_RUN_ID']}"
    return None


def actor(env: Mapping[str, str] = os.environ) -> str:
    """The CI run's URL on GitHub Actions, else user@host; PUBLICWORKS_ACTOR overrides both."""
    if env.get("PUBLICWORKS_ACTOR"):
        return env["PUBLICWORKS_ACTOR"]
    url = run_url(env)
    if url:
        who = env.get("GITHUB_ACTOR", "")
        return f"{who} via {url}" if who else url
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"
