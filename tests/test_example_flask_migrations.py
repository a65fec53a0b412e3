"""The worked example: a Flask app upgraded tenant by tenant while traffic flows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "flask_migrations" / "demo.py"


def test_the_flask_example_upgrades_every_tenant_with_no_mismatch(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO), "--tenants", "12", "--clients", "2", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "schema mismatches: 0; tenants not on 2026.12 or missing notes: 0" in done.stdout
    assert "2026.12 is the default now" in done.stdout
    assert "503 (Retry-After 5)" in done.stdout  # the gate was exercised
    assert len(list(tmp_path.glob("shop*.db"))) == 12
