"""The image and the wheel carry every Candor package (a package left out
imports fine from a checkout and fails only in the image)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def packages() -> set[str]:
    """Top-level directories of the repository that are Python packages."""
    return {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests"}


def test_the_image_copies_every_package() -> None:
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \1$", dockerfile, re.MULTILINE))
    assert packages() <= copied, f"deploy/Dockerfile misses {sorted(packages() - copied)}"


def test_the_wheel_includes_every_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    listed = {pattern.rstrip("*") for pattern in include}
    assert packages() <= listed, f"pyproject.toml misses {sorted(packages() - listed)}"
