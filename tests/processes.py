"""Processes as Linux's /proc shows them, for the tests and benches that start servers."""

from pathlib import Path


def children(pid):
    """The processes that `pid`'s threads started and that still run; [] once `pid` is gone."""
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    except FileNotFoundError:
        return []  # it has exited
    return found
