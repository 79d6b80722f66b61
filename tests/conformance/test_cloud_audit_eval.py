"""Cloud audit evaluation (issue 13): drift on labelled CloudTrail, Kubernetes and GCP events.

``tether eval cloud-audit`` ingests each file of rule-test events into a throw-away tether
with no estate (every principal unmanaged) and flags an event on a high finding. Measured
per source: false-positive rate <= 0.05 on the benign events of identity-behaviour rules
(those no rule of the file calls malicious), and recall no lower than measured on
2026-12-08 (short of the issue's 0.8 for CloudTrail, see bench/README.md): a regression fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from authzen_harness import SHARED_DATA

#: Recall measured at the last change (flag at high), over every counted rule and over
#: those their authors rate above informational; the issue's target is 0.8.
RECALL_AT_LEAST = {
    "aws_cloudtrail_rules.labelled.jsonl": (0.68, 0.87),
    "gcp_audit_rules.labelled.jsonl": (0.80, 0.86),
    "kubernetes_rules.labelled.jsonl": (0.83, 1.0),
    "gcp_k8s_rules.labelled.jsonl": (0.83, 0.83),
}
FILES = [
    SHARED_DATA / "cloud-audit" / f"{name}_rules.labelled.jsonl"
    for name in ("aws_cloudtrail", "gcp_audit", "kubernetes", "gcp_k8s", "aws_eks")
]


def _run(*extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tether.cli", "eval", "cloud-audit", *map(str, FILES)]
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([*command, *extra], capture_output=True, text=True, timeout=120, env=env)


def test_benign_events_stay_below_five_percent_per_source(
    figure: Callable[[str], None],
) -> None:
    done = _run("--json")
    assert done.returncode == 0, done.stderr
    files = {f["file"]: f for f in json.loads(done.stdout)["files"]}
    figure(
        "[cloud-audit] "
        + "; ".join(
            f"{name.split('_rules')[0]}: recall {f['recall']} "
            f"(rated > info {f['recall_rated']}), FPR {f['fpr']}, "
            f"FPR all benign {f['fpr_all_benign']}"
            for name, f in files.items()
        )
    )
    cloudtrail = files["aws_cloudtrail_rules.labelled.jsonl"]
    assert cloudtrail["skipped_lines"]  # `"log": null` lines are reported, not guessed
    assert cloudtrail["tp"] > 0
    for result in files.values():
        assert result["fpr"] is None or result["fpr"] <= 0.05, result
        assert result["counted_rules"] or result["fpr"] is None
    for name, (least, least_rated) in RECALL_AT_LEAST.items():
        assert files[name]["recall"] >= least, files[name]
        assert files[name]["recall_rated"] >= least_rated, files[name]
        split = files[name]["recall_by_rule_severity"].values()
        assert sum(s["tp"] + s["fn"] for s in split) == files[name]["tp"] + files[name]["fn"]
    # GKE-shaped lines among the Kubernetes rules are read as GCP audit entries.
    assert len(files["kubernetes_rules.labelled.jsonl"]["counted_rules"]) >= 4


def test_a_file_of_no_known_source_is_refused(tmp_path: Path) -> None:
    unknown = tmp_path / "such_rules.jsonl"
    unknown.write_text("{}\n")
    command = [sys.executable, "-m", "tether.cli", "eval", "cloud-audit", str(unknown)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no cloud audit source" in done.stderr


def test_a_missing_file_is_named_as_missing() -> None:
    command = [sys.executable, "-m", "tether.cli", "eval", "cloud-audit", "/no/such_rules.jsonl"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "/no/such_rules.jsonl`: no such file" in done.stderr


def test_a_rule_without_a_severity_of_text_is_unrated(tmp_path: Path) -> None:
    event = {
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey",
        "eventTime": "2026-01-01T00:00:00Z",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/u"},
    }
    labelled = tmp_path / "aws_cloudtrail_odd.jsonl"
    labelled.write_text(
        json.dumps({"rule_id": "r", "severity": ["High"], "malicious": True, "log": event}) + "\n"
    )
    command = [sys.executable, "-m", "tether.cli", "eval", "cloud-audit", str(labelled), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["files"][0]
    assert set(result["recall_by_rule_severity"]) == {"unrated"}
    assert result["recall_rated"] is None  # unrated counts with the informational rules
