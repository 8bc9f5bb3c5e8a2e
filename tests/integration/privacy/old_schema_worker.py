"""Run ``candor <args>`` as a process deployed before the newest CaptureEvent
version was released: its schema registry lacks that version, so events a newer
client writes carry a fingerprint it does not know (``unknown_schema``).

Usage: python -m tests.integration.privacy.old_schema_worker worker --app-id ...
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import schemas.codec as codec
import schemas.registry as registry


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="candor-old-schemas-"))
    try:
        shutil.copytree(registry.PACKAGE_ROOT, root, dirs_exist_ok=True)
        newest = registry.default_registry().latest("CaptureEvent")
        (root / newest.path.relative_to(registry.PACKAGE_ROOT)).unlink()
        # Records pinning that version (DeviceBatch) were released with it or later.
        for path in root.glob("*/*.avsc"):
            pins = json.loads(path.read_text()).get(registry.USES_PROPERTY, {})
            if pins.get(newest.fullname) == newest.version:
                path.unlink()
        old = registry.Registry.load(root)
        registry.default_registry = lambda: old  # type: ignore[assignment]
        codec.default_registry = lambda: old  # type: ignore[attr-defined,assignment]
        codec.default_codec.cache_clear()
        from candor.cli import main as cli

        return cli(sys.argv[1:])
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
