"""Backtesting drift detection on labelled cloud audit events (``tether eval cloud-audit``).

Input: JSON lines ``{rule_id, mitre, test_name, malicious, log}`` (detection-rule unit
tests, as in ``shared/data/cloud-audit``): ``log`` is one raw CloudTrail, Kubernetes or
GCP audit event, ``malicious`` whether the rule fires on it. Each file's events are
ingested into a throw-away tether (temporary SQLite store, no estate: every principal is
a discovered, unmanaged identity), each line by the adapter of its shape (a GKE or AKS
event among the Kubernetes rules is read as what it is; the file's own adapter when no
shape fits), then ``drift scan`` runs every detector over them. An event is *flagged*
when a finding of at least ``flag_at`` names it as its first evidence, or would have
were it not a repeat (same identity, detector, resource and reason within minutes) of
one that does: the repeated finding is the alert for it too.

Which rules count (*identity-behaviour rules*): a rule whose tests tell malicious from
benign by what the identity did, the action and whether it went through, rather than by
the content of one action's parameters (a bucket policy that is public or not, a login
with or without MFA): mechanically, a rule is counted when none of its benign events is
the same action, with the same outcome, as one of its malicious events. tether's drift
compares behaviour (actions, entitlement, baseline), not policy documents, so a
parameter-content rule is outside what it claims to detect. Recall is over the malicious
events of counted rules. The test is mechanical, so it still counts a rule whose tests
happen to differ by action or outcome although its logic reads a region, a count, a query
or the caller's address (``UnusedRegion``, ``BulkObjectRewrite``, ``PublicIP`` rules...);
bench/README.md names them and gives the figures without them beside the counted ones.

Which benign events count: a rule's benign test says only that *this* rule must not
fire. One that is the same action and outcome as a malicious test of another rule of the
file (``iam:AttachUserPolicy`` is benign for "a role was created" and malicious for
"a compromised key was quarantined") is *contested*: by the counting rule above it
differs from a malicious event only by parameters. FPR is over the uncontested benign
events of counted rules; contested ones are reported beside it (``fpr_with_contested``),
as is FPR over every benign event of the file and over its uncontested ones.

Recall is also split by each rule's own severity (its ``severity`` field, as its authors
rate it): ``recall_rated`` is over the counted rules rated above informational. An "Info"
rule (a password changed, a sign-in, a role assumed by a Lambda) gives an analyst context
and raises no alert in its own product; tether flagging at high is an alert. Nothing
reads rule ids or values of the data: the rule field only groups events, and detection
sees the raw events alone.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from tether.config import Settings
from tether.drift.engine import DriftEngine
from tether.drift.model import Finding, Severity
from tether.estate.compiled import EMPTY_ESTATE
from tether.evaluation.agentdojo import EvaluationInputInvalid
from tether.services import Tether
from tether.store.telemetry_tables import events
from tether.telemetry.ingest import iter_detected, open_source
from tether.telemetry.model import Source, dedupe_key_of
from tether.telemetry.store import EventStore

#: Source of a labelled file, by the start of its name (``aws_cloudtrail_rules...``).
FILE_SOURCES = (
    ("aws_cloudtrail", Source.CLOUDTRAIL),
    ("aws_eks", Source.K8S_AUDIT),
    ("kubernetes", Source.K8S_AUDIT),
    ("gcp_k8s", Source.GCP_AUDIT),
    ("gcp_audit", Source.GCP_AUDIT),
)


def source_of(path: Path) -> Source:
    for prefix, source in FILE_SOURCES:
        if path.name.startswith(prefix):
            return source
    known = ", ".join(p for p, _ in FILE_SOURCES)
    raise EvaluationInputInvalid(f"`{path.name}`: no cloud audit source (names start {known})")


#: A rule's severity when its line gives none, and the ones that rate a rule as
#: informational (Panther's "Info": context for an analyst, not an alert).
UNRATED = "unrated"
INFORMATIONAL = frozenset({"info", "informational", UNRATED})


@dataclass(slots=True)
class Labelled:
    line: int
    rule: str
    malicious: bool
    log: dict[str, Any]
    rated: str = UNRATED  # the rule's own severity, as its authors rate it
    action: str | None = None
    outcome: str | None = None
    flagged: bool = False
    finding: dict[str, Any] | None = None


@dataclass(slots=True)
class FileResult:
    """The counts of one file (one source)."""

    file: str
    source: str
    counted_rules: list[str] = field(default_factory=list)
    other_rules: list[str] = field(default_factory=list)
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0
    contested: int = 0  # benign events of counted rules that repeat a malicious test
    contested_flagged: int = 0
    all_benign: int = 0
    all_benign_flagged: int = 0
    all_uncontested: int = 0  # benign events of any rule that repeat no malicious test
    all_uncontested_flagged: int = 0
    skipped: list[int] = field(default_factory=list)  # lines without an event
    #: Malicious events of counted rules by the rules' own severity: [flagged, missed].
    by_rated: dict[str, list[int]] = field(default_factory=dict)
    misses: list[dict[str, Any]] = field(default_factory=list)
    false_alarms: list[dict[str, Any]] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def recall_rated(self) -> float | None:
        """Recall over the counted rules their own authors rate above informational."""
        rated = [v for k, v in self.by_rated.items() if k not in INFORMATIONAL]
        return _ratio(sum(v[0] for v in rated), sum(v[0] + v[1] for v in rated))

    @property
    def precision(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def fpr(self) -> float | None:
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def fpr_with_contested(self) -> float | None:
        """FPR had contested benign events counted as negatives too."""
        flagged = self.fp + self.contested_flagged
        return _ratio(flagged, self.fp + self.tn + self.contested)

    @property
    def fpr_all_benign(self) -> float | None:
        return _ratio(self.all_benign_flagged, self.all_benign)

    @property
    def fpr_all_uncontested(self) -> float | None:
        """FPR over the benign events of every rule that repeat no malicious test."""
        return _ratio(self.all_uncontested_flagged, self.all_uncontested)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "source": self.source,
            "tp": self.tp,
            "fn": self.fn,
            "fp": self.fp,
            "tn": self.tn,
            "precision": self.precision,
            "recall": self.recall,
            "recall_rated": self.recall_rated,
            "recall_by_rule_severity": {
                rated: {"tp": hit, "fn": miss, "recall": _ratio(hit, hit + miss)}
                for rated, (hit, miss) in sorted(self.by_rated.items())
            },
            "fpr": self.fpr,
            "contested": self.contested,
            "contested_flagged": self.contested_flagged,
            "fpr_with_contested": self.fpr_with_contested,
            "fpr_all_benign": self.fpr_all_benign,
            "fpr_all_uncontested": self.fpr_all_uncontested,
            "all_benign": self.all_benign,
            "counted_rules": self.counted_rules,
            "other_rules": self.other_rules,
            "skipped_lines": self.skipped,
            "misses": self.misses,
            "false_alarms": self.false_alarms,
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def read_labelled(path: Path) -> tuple[list[Labelled], list[int]]:
    """The labelled events of ``path`` and the lines without one (``"log": null``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvaluationInputInvalid(f"cannot read `{path}`: {exc.strerror}") from None
    found: list[Labelled] = []
    skipped: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise EvaluationInputInvalid(f"`{path.name}` line {number}: not JSON ({exc})") from None
        if not isinstance(row, dict) or not isinstance(row.get("malicious"), bool):
            raise EvaluationInputInvalid(f"`{path.name}` line {number}: no boolean `malicious`")
        log = row.get("log")
        if not isinstance(log, dict):
            skipped.append(number)
            continue
        severity = row.get("severity")
        rated = severity.lower() if isinstance(severity, str) and severity else UNRATED
        found.append(Labelled(number, str(row.get("rule_id")), row["malicious"], log, rated))
    return found, skipped


def evaluate_file(path: Path, *, flag_at: Severity = Severity.HIGH) -> FileResult:
    """Ingest one labelled file into a throw-away tether, scan, and count (see module doc)."""
    source = source_of(path)
    labelled, skipped = read_labelled(path)
    result = FileResult(path.name, source.value, skipped=skipped)
    with tempfile.TemporaryDirectory(prefix="tether-eval-cloud-") as work:
        root = Path(work)
        raw = root / "events.jsonl"
        raw.write_bytes(b"".join(orjson.dumps(item.log) + b"\n" for item in labelled))
        tether = Tether(
            Settings(
                database_url=f"sqlite:///{root / 'tether.db'}",
                master_key_file=str(root / "master.key"),
            )
        )
        try:
            store = EventStore(tether.engine, tether.keys)
            with open_source(raw) as handle:
                # Each line by the adapter of its shape (a GKE or AKS event inside the
                # Kubernetes rules is read as what it is); the file's own when none fits.
                store.ingest(iter_detected(handle, source_name=path.name, fallback=source))
            _judge(tether, labelled, flag_at)
        finally:
            tether.close()
    _count(result, labelled)
    return result


def _judge(tether: Tether, labelled: list[Labelled], flag_at: Severity) -> None:
    with tether.engine.connect() as connection:
        stored = {
            r.dedupe_key: (r.seq, r.action, r.outcome)
            for r in connection.execute(
                select(events.c.seq, events.c.dedupe_key, events.c.action, events.c.outcome)
            )
        }
    drift = DriftEngine(tether.engine, lambda: (None, EMPTY_ESTATE), tail_events=False)
    drift.kept_repeats = []
    findings = drift.scan(since=datetime(1970, 1, 1, tzinfo=UTC), until=_far_future())
    worst: dict[str, Finding] = {}
    # A repeat (same identity, detector, resource and reason within minutes) is not
    # stored again, but the finding it repeats is the alert for its event too.
    for finding in [*findings, *drift.kept_repeats]:
        ref = finding.evidence[0] if finding.evidence else None
        if ref is None or finding.suppressed_by is not None:
            continue
        held = worst.get(ref)
        if held is None or finding.severity.rank > held.severity.rank:
            worst[ref] = finding
    for item in labelled:
        hit = stored.get(dedupe_key_of(item.log))
        if hit is None:
            continue  # the adapter refused it: counted as not flagged
        seq, item.action, item.outcome = hit
        top = worst.get(f"event:{seq}")
        if top is not None and top.severity.rank >= flag_at.rank:
            item.flagged = True
            item.finding = {
                "detector": top.detector,
                "severity": top.severity.value,
                "reason": top.reason,
            }


def _far_future() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


def behaviour_rules(labelled: list[Labelled]) -> set[str]:
    """Rules whose benign events never repeat a malicious event's action and outcome."""
    malicious: dict[str, set[tuple[str | None, str | None]]] = defaultdict(set)
    benign: dict[str, set[tuple[str | None, str | None]]] = defaultdict(set)
    for item in labelled:
        (malicious if item.malicious else benign)[item.rule].add((item.action, item.outcome))
    return {rule for rule, done in malicious.items() if not done & benign.get(rule, set())}


def _count(result: FileResult, labelled: list[Labelled]) -> None:
    counted = behaviour_rules(labelled)
    # What some rule of the file calls malicious is no benign behaviour, whatever rule
    # lists it as a benign test (it only says that rule must not fire).
    malicious = {(i.action, i.outcome) for i in labelled if i.malicious}
    result.counted_rules = sorted(counted)
    result.other_rules = sorted({i.rule for i in labelled} - counted)
    for item in labelled:
        shown = {"line": item.line, "rule": item.rule, "action": item.action}
        if not item.malicious:
            result.all_benign += 1
            result.all_benign_flagged += item.flagged
            if (item.action, item.outcome) not in malicious:
                result.all_uncontested += 1
                result.all_uncontested_flagged += item.flagged
        if item.rule not in counted:
            continue
        if item.malicious:
            result.by_rated.setdefault(item.rated, [0, 0])[0 if item.flagged else 1] += 1
        if item.malicious and item.flagged:
            result.tp += 1
        elif item.malicious:
            result.fn += 1
            result.misses.append(shown)
        elif (item.action, item.outcome) in malicious:
            result.contested += 1
            result.contested_flagged += item.flagged
        elif item.flagged:
            result.fp += 1
            result.false_alarms.append({**shown, **(item.finding or {})})
        else:
            result.tn += 1


def evaluate_files(paths: list[Path], *, flag_at: Severity = Severity.HIGH) -> list[FileResult]:
    """:func:`evaluate_file` of each path, in order; every path is checked before any work.

    Raises:
        EvaluationInputInvalid: a path that is not a file, or names no cloud audit source.
    """
    for path in paths:
        if not path.is_file():
            raise EvaluationInputInvalid(f"`{path}`: no such file")
        source_of(path)
    return [evaluate_file(p, flag_at=flag_at) for p in paths]


def iter_results_json(results: list[FileResult]) -> Iterator[dict[str, Any]]:
    yield from (r.to_json() for r in results)
