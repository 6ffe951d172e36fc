"""Offline tests: pure logic, and the orchestration against a fake server. No root, no sandbox, no sleeping."""

from __future__ import annotations

from pathlib import Path

import pytest

from publicworks import config
from tests.support.fake import World

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cfg() -> config.Config:
    return config.load(ROOT / "services.toml")


@pytest.fixture
def co(cfg):
    return cfg.services["civic-observer"]


@pytest.fixture
def django(cfg):
    return cfg.services["corkboard-django"]


@pytest.fixture
def world(cfg, monkeypatch) -> World:
    for var in ("SLACK_WEBHOOK_URL", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "PUBLICWORKS_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PUBLICWORKS_ACTOR", "tests@offline")
    return World(cfg)
