#!/usr/bin/env python3
"""Check training/requirements-app-lock.txt (the app's set-up, no torch) against
training/requirements-lock.txt (everything, training included):

1. every pin of the app lock is in the full lock with the same version, so `setup.sh` and
   `setup.sh --training` never install two versions of one package;
2. the app lock is closed: every requirement (markers evaluated for this interpreter, extras
   ignored) of an app-lock package that is installed in the running environment is itself in
   the app lock. Run it with the venv's python after the set-up.

Run: .venv/bin/python packaging/check_app_lock.py     (exit 1 on a mismatch)
"""
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "training" / "requirements-app-lock.txt"
FULL = ROOT / "training" / "requirements-lock.txt"


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[canon(name)] = version
    return pins


def main() -> int:
    app, full = read_lock(APP), read_lock(FULL)
    errors = []
    for name, version in sorted(app.items()):
        if full.get(name) != version:
            errors.append(f"{name}=={version} in the app lock, {full.get(name, 'absent')} in the full lock")
    if "torch" in app:
        errors.append("torch is in the app lock")
    try:
        from packaging.requirements import Requirement
    except ImportError:
        Requirement = None
        print("check_app_lock: packaging not installed; closure not checked", file=sys.stderr)
    checked = 0
    if Requirement is not None:
        for name in sorted(app):
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue
            checked += 1
            for spec in dist.requires or []:
                req = Requirement(spec)
                if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                    continue
                if canon(req.name) not in app:
                    errors.append(f"{name} requires {req.name}, which is not in the app lock")
    for e in errors:
        print("check_app_lock:", e, file=sys.stderr)
    if not errors:
        print(f"check_app_lock: {len(app)} app pins match the full lock; closure checked for {checked} installed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
