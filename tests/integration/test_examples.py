"""The examples README points to run as it says (real servers, real gateway)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_mcp_agent_demo_runs_every_step_as_it_says() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "mcp-agent" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "tools/list -> ['read_invoice', 'send_email']" in out
    assert '"iban": "[redacted]"' in out  # the constrain obligation, applied by the gateway
    assert "refused (outside_task_intent)" in out  # the injected destination
    # Paying is not in the task; in this enforce class live drift may also have revoked
    # the task after the injected destination, whichever tether saw first.
    paying = out.split("pay_invoice {")[1].splitlines()[1].strip()
    assert re.match(r"-> refused \((token_scope_exceeded|task_ended|token_revoked)\)", paying)
    assert "refused (task_ended)" in out  # after the task ended
    reached = out.split("what reached the invoice server:")[1]
    assert "attacker" not in reached
    assert "pay_invoice" not in reached
    assert "every step went as expected" in out
