"""The README's settings table names every variable the settings read."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# env("NAME", ...), env_int("NAME", ...) and the rest of config/settings.py's readers.
READ = re.compile(r"\benv(?:_[a-z_]+)?\(\s*\"([A-Z][A-Z0-9_]+)\"")


def test_every_environment_variable_the_settings_read_is_in_the_readme():
    read = set(READ.findall((ROOT / "config" / "settings.py").read_text()))
    readme = (ROOT / "README.md").read_text()
    assert len(read) > 40  # the pattern still finds the readers
    assert sorted(name for name in read if f"`{name}`" not in readme) == []
