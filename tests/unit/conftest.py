from pathlib import Path

import pytest

from publicworks import config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cfg() -> config.Config:
    return config.parse((ROOT / "services.toml").read_text(), env={})


@pytest.fixture
def co(cfg):
    return cfg.services["civic-observer"]


@pytest.fixture
def django(cfg):
    return cfg.services["corkboard-django"]
