"""Installing a plugin repository the tests wrote into a folder of its own, without the network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def install_offline(project: Path, site: Path) -> None:
    """pip-install ``project`` into ``site`` (no index, no build isolation: no network; the running environment unchanged)."""
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(site),
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
