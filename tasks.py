"""`inv --list` in a checkout: the tasks are defined in the package (publicworks.tasks)."""

from publicworks.tasks import ns  # noqa: F401
