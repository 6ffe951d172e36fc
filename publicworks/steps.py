"""The steps of a run: one type shared by the output's numbering, the dry run, the plans and the history."""

from __future__ import annotations

from enum import StrEnum


class Step(StrEnum):
    LOCK = "lock"
    INSPECT = "inspect"
    PULL = "pull"
    MIGRATE = "migrate"
    START = "start"
    HEALTH = "health"
    SWITCH = "switch"  # Caddy itself routes to the new color: proven, not assumed
    CANARY = "canary"
    STOP = "stop"  # the old color's units stop
    RECORD = "record"
    ROLLBACK = "rollback"  # a canary ended by stopping its new color


DEPLOY = (
    Step.LOCK,
    Step.INSPECT,
    Step.PULL,
    Step.MIGRATE,
    Step.START,
    Step.HEALTH,
    Step.SWITCH,
    Step.CANARY,
    Step.STOP,
    Step.RECORD,
)
ROLLBACK = (Step.LOCK, Step.INSPECT, Step.START, Step.HEALTH, Step.SWITCH, Step.STOP, Step.RECORD)
