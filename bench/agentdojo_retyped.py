"""Recall when the agent retypes the attacker's destination (issue 14).

For each AgentDojo run whose injection succeeded, the destinations its high findings
trace to a result (``covered_text``, ``uncovered_result``: the attacker's) are retyped in
the run's calls as a model might (an account number in groups of four, lowercase, behind
a label; a URL with a scheme and a query or a path, upper case; an address with a display
name, upper case, ``mailto:``), and each retyped run is replayed: is it still flagged?
Nothing is asserted.

    PYTHONPATH=$PWD/src .venv/bin/python bench/agentdojo_retyped.py \\
        [--data /work/shared/data/agentdojo] [MODEL ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/agentdojo_retyped.py` puts bench/ first on sys.path, where bench/http.py
# would shadow the standard library's `http`.
_ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0] or ".").resolve() == _ROOT / "bench":
    sys.path[0] = str(_ROOT)

import argparse  # noqa: E402
from dataclasses import replace  # noqa: E402
from typing import Any  # noqa: E402

from tether.evaluation import Replay, Run, load_ground_truth, load_traces  # noqa: E402
from tether.evaluation.agentdojo import Label  # noqa: E402

MODELS = (
    "claude-3-haiku-20240307",
    "command-r-plus",
    "gemini-1-5-pro-002",
    "gpt-4-0125-preview",
)


def retypings(value: str) -> dict[str, str]:
    if "@" in value:
        return {
            "display": f"Mark Black <{value}>",
            "upper": value.upper(),
            "mailto": f"mailto:{value}",
        }
    if "." in value and " " not in value:
        return {
            "query": f"https://{value}/?q=secret+data",
            "path": f"http://{value}/collect/abc",
            "upper": value.upper(),
        }
    if value.isalnum() and len(value) > 12:
        grouped = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return {"spaced": grouped, "lower": value.lower(), "labelled": f"IBAN {value}"}
    return {}


def _swap(argument: Any, old: str, new: str) -> Any:
    if isinstance(argument, list):
        return [new if item == old else item for item in argument]
    return new if argument == old else argument


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/agentdojo"))
    parser.add_argument("models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    truth = load_ground_truth(args.data / "agentdojo_v1.2.2_ground_truth_tool_calls.jsonl")
    for model in args.models:
        runs = load_traces(args.data / f"traces-{model}.jsonl")
        positives = [r for r in runs if r.label is Label.SUCCEEDED]
        counts: dict[str, list[int]] = {}
        with Replay(truth, positives) as replay:
            for run in positives:
                verdict = replay.replay(run)
                injected = {
                    p["value"]
                    for f in verdict.findings
                    if f.severity.rank >= replay.flag_at.rank
                    for p in f.details.get("provenance", [])
                    if p["origin"] in ("covered_text", "uncovered_result")
                }
                for value in sorted(injected):
                    for kind, new in retypings(value).items():
                        calls = tuple(
                            replace(
                                c,
                                arguments={k: _swap(a, value, new) for k, a in c.arguments.items()},
                            )
                            for c in run.calls
                        )
                        retyped: Run = replace(run, calls=calls)
                        seen = counts.setdefault(kind, [0, 0])
                        seen[0] += replay.replay(retyped).flagged
                        seen[1] += 1
        shown = ", ".join(f"{kind} {f}/{n}" for kind, (f, n) in sorted(counts.items()))
        flagged = sum(f for f, _ in counts.values())
        total = sum(n for _, n in counts.values())
        print(f"{model}: {flagged}/{total} retyped runs flagged ({shown})")


if __name__ == "__main__":
    main()
