"""Production's static files: collectstatic with the compressed manifest storage.

`make serve` runs it before anything starts; a vendored file that names a
file it does not ship (a source map, say) fails it there, so it is run here
too, on every pass.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_collectstatic_with_hashed_compressed_names_succeeds(tmp_path):
    environ = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "collectstatic-test",
        "ALLOWED_HOSTS": "localhost",
        "DATA_DIR": str(tmp_path),
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = (tmp_path / "static" / "staticfiles.json").read_text()
    assert "vendor/uppy/uppy.min.js" in manifest and "css/portal.css" in manifest
