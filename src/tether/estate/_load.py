"""Loading an estate folder: every ``*.yaml`` (and ``*.yml``) at its top, every ``*.cedar``
under it (hidden folders such as ``.git`` excepted), and an optional ``schema.cedarschema``;
all of it validated, every problem reported at once.

Sections may be split across YAML files. They are read in dependency order (classes,
data classes and trust first, then resources and identities, then exceptions) so that a
reference to something declared in another file resolves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from tether.errors import EstateInvalid, EstateProblem
from tether.estate._fields import Problems
from tether.estate._identities import read_identities
from tether.estate._model import Estate, PolicyFile, Where
from tether.estate._organisation import read_organisation
from tether.estate._sections import (
    LoadContext,
    read_classes,
    read_data_classes,
    read_exceptions,
    read_resources,
)
from tether.estate._tools import read_tools
from tether.estate._trust import read_trust
from tether.estate._yaml import Node, load_located
from tether.policy import parse_policy_file, split_statements, validate_against_schema

SCHEMA_FILE = "schema.cedarschema"
ENTITLEMENT_PREFIX = "entitlement:"
MAX_POLICY_ID = 240
_Reader = Callable[[Node, LoadContext], None]
_PASSES: tuple[tuple[tuple[str, _Reader], ...], ...] = (
    (("classes", read_classes), ("data_classes", read_data_classes), ("trust", read_trust)),
    (("resources", read_resources), ("identities", read_identities)),
    (("exceptions", read_exceptions), ("tools", read_tools)),
    (("organisation", read_organisation),),
)
SECTIONS = tuple(name for group in _PASSES for name, _ in group)


def load_estate(directory: Path, *, now: datetime | None = None) -> Estate:
    """Parse and validate an estate folder.

    Args:
        directory: the estate folder.
        now: the moment exceptions must not have expired by (default: the current time).

    Raises:
        EstateInvalid: listing every problem found, each with its file and line.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise EstateInvalid([EstateProblem(str(directory), None, "not a folder")])
    ctx = LoadContext(directory=directory, now=now or datetime.now(UTC))
    yaml_files = sorted(
        p for pattern in ("*.yaml", "*.yml") for p in directory.glob(pattern) if p.is_file()
    )
    cedar_files = sorted(
        p
        for p in directory.rglob("*.cedar")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )
    if not yaml_files and not cedar_files:
        ctx.problems.add(".", "no `*.yaml` or `*.cedar` files in the estate folder")
    documents = [doc for doc in (_read_yaml(directory, p, ctx.problems) for p in yaml_files) if doc]
    for group in _PASSES:
        for document in documents:
            for key, reader in group:
                section = document.value.get(key)
                if section is not None:
                    reader(section, ctx)
    policy_files = _read_policies(directory, cedar_files, ctx)
    schema_text = _read_schema(directory, ctx.problems)
    raise_if_problems(directory, ctx.problems.items)
    return Estate(
        directory=directory,
        classes=ctx.classes,
        trust=ctx.trust,
        data_classes=ctx.data_classes,
        rules=tuple(ctx.rules),
        resources=tuple(ctx.resources),
        identities=ctx.identities,
        exceptions=tuple(ctx.exceptions),
        policy_files=policy_files,
        schema_text=schema_text,
        schema_file=SCHEMA_FILE if schema_text is not None else None,
        data_class_lines=ctx.data_class_lines,
        tools=ctx.tools,
        organisation=ctx.organisation,
    )


def raise_if_problems(directory: Path, problems: Iterable[EstateProblem]) -> None:
    """Raise :class:`EstateInvalid` naming files as the user can open them."""
    shown = [
        EstateProblem(
            str(directory) if p.file == "." else str(directory / p.file), p.line, p.message
        )
        for p in problems
    ]
    if shown:
        shown.sort(key=lambda p: (p.file, p.line or 0))
        raise EstateInvalid(shown)


def _read_text(directory: Path, path: Path, problems: Problems) -> str | None:
    name = path.relative_to(directory).as_posix()
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        problems.add(name, "not UTF-8 text")
    except OSError as exc:
        problems.add(name, f"cannot read the file: {exc.strerror or exc}")
    return None


def _read_yaml(directory: Path, path: Path, problems: Problems) -> Node | None:
    name = path.relative_to(directory).as_posix()
    text = _read_text(directory, path, problems)
    if text is None:
        return None
    root, yaml_problems = load_located(name, text)
    for problem in yaml_problems:
        problems.add(name, problem.message, problem.line)
    if root is None:
        return None
    if not root.is_map:
        problems.add(root, "an estate file must be a mapping of sections")
        return None
    for key in root.value:
        if key not in SECTIONS:
            expected = ", ".join(f"`{s}`" for s in SECTIONS)
            problems.add(root, f"unknown section `{key}` (expected {expected})", root.key_line(key))
    return root


def _read_policies(directory: Path, paths: list[Path], ctx: LoadContext) -> tuple[PolicyFile, ...]:
    files: list[PolicyFile] = []
    for path in paths:
        name = path.relative_to(directory).as_posix()
        text = _read_text(directory, path, ctx.problems)
        if text is None:
            continue
        specs, problems = parse_policy_file(name, text)
        for problem in problems:
            ctx.problems.add(name, problem.message, problem.line)
        if problems:
            continue
        statements = split_statements(text)
        texts: dict[str, str] = {}
        if len(statements) == len(specs):  # one policy per statement; else texts are rendered
            texts = {
                spec.id: body.strip() for spec, (_, body) in zip(specs, statements, strict=True)
            }
        for spec in specs:
            at = Where(name, spec.line)
            if len(spec.id) > MAX_POLICY_ID:
                ctx.problems.add(at, f"policy id `{spec.id}` is longer than {MAX_POLICY_ID}")
            elif spec.id.startswith(ENTITLEMENT_PREFIX):
                ctx.problems.add(
                    at,
                    f"policy id `{spec.id}`: ids starting with `{ENTITLEMENT_PREFIX}` are reserved",
                )
            else:
                ctx.claim("policy", spec.id, at)
        files.append(PolicyFile(name, tuple(specs), texts))
    return tuple(files)


def _read_schema(directory: Path, problems: Problems) -> str | None:
    path = directory / SCHEMA_FILE
    if not path.is_file():
        return None
    text = _read_text(directory, path, problems)
    if text is None:
        return None
    for problem in validate_against_schema([], text, schema_file=SCHEMA_FILE):
        problems.add(SCHEMA_FILE, problem.message, problem.line)
    return text
