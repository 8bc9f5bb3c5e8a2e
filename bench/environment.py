"""What every benchmark program shares: the repository's packages importable
when a program runs as ``python bench/<name>.py`` (bench/ itself is then first
on ``sys.path``; no bench module is named like a package), and free ports.

Import it before Candor's packages: ``from environment import REPO, free_port``.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))

from candor.stack import free_port  # noqa: E402  (after the path is set)

__all__ = ["REPO", "free_port"]
