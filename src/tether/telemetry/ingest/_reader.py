"""Incremental JSON reading in constant memory (RFC 8259 text, JSON Lines framing).

One reader serves every adapter. It accepts JSON lines, several documents one after
another (pretty-printed or not), a top-level array, and AWS CloudTrail's
``{"Records": [...]}`` files. Array elements are decoded one at a time over a sliding
text buffer, so a multi-gigabyte single-line CloudTrail file never sits in memory
whole. Complete lines, and array elements whose end can be found cheaply (see
:class:`_FastPath`), are decoded by ``orjson``; the rest by
:meth:`json.JSONDecoder.raw_decode`. Both produce the same values (integers beyond 64
bits become floats, ``NaN`` and ``Infinity`` are refused, as ``orjson`` does).

Input that cannot be read yields :class:`Unreadable` with the line it starts on, and
reading resumes on the next line.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import zlib
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

import orjson

CHUNK_CHARS = 1 << 16
# One event larger than this is refused rather than buffered; it bounds memory use.
MAX_ITEM_CHARS = 32 << 20
_LOOKAHEAD = 256
_FAST_PATH_WINDOW = 1 << 16
_FAST_PATH_MISSES = 8
_WHITESPACE = " \t\r\n"
_NOT_WHITESPACE = re.compile(r"[^ \t\r\n]")

TextSource = IO[bytes] | IO[str] | Iterable[str] | Iterable[bytes]


class Item(NamedTuple):
    """One decoded JSON value; ``where`` places an element of a streamed array (``record 7``).

    A named tuple rather than a dataclass: one is made per event, and this is cheaper.
    """

    line: int
    value: Any
    where: str = ""


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Text that is not JSON (or not complete JSON), located by the line it starts on."""

    line: int
    message: str


def _int(text: str) -> int | float:
    value = int(text)
    return value if -(1 << 63) <= value < (1 << 64) else float(text)


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number `{text[:40]}` is out of range")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not a JSON value")


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)


def text_chunks(source: TextSource) -> Iterator[str]:
    """Text from a binary or text file (read in chunks) or from an iterable of lines.

    Bytes are decoded as UTF-8 with ``surrogateescape``: invalid bytes survive as lone
    surrogates, which JSON decoding or canonicalisation then refuses for that line only.
    Items of an iterable are lines: each is given a line break if it lacks one. A byte
    order mark at the very start is dropped.
    """
    chunks = _raw_text(source)
    for first in chunks:
        if first:
            yield first.removeprefix("\ufeff")
            break
    yield from chunks


def _raw_text(source: TextSource) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    read = getattr(source, "read", None)
    if callable(read):
        while chunk := read(CHUNK_CHARS):
            yield decoder.decode(chunk) if isinstance(chunk, bytes | bytearray) else chunk
        yield decoder.decode(b"", final=True)
        return
    for line in source:
        if isinstance(line, bytes | bytearray):
            line = decoder.decode(line, final=True)
        yield line if line.endswith("\n") else line + "\n"


class _Cursor:
    """A sliding window over the text: ``buf[pos]`` is on line ``line``."""

    __slots__ = ("_chunks", "buf", "eof", "failure", "line", "pos")

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.eof = False
        self.failure: str | None = None

    def fill(self) -> bool:
        """Append at least as much text as is buffered; False when nothing more came.

        Growing geometrically keeps re-decoding an item split across chunks linear.
        """
        if self.eof:
            return False
        if self.pos:
            self.buf = self.buf[self.pos :]
            self.pos = 0
        want = max(len(self.buf), 1)
        parts = [self.buf]
        got = 0
        try:
            for chunk in self._chunks:
                parts.append(chunk)
                got += len(chunk)
                if got >= want:
                    break
            else:
                self.eof = True
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            # A truncated or corrupt .gz, an unreadable device, a text file with bad bytes.
            self.eof = True
            self.failure = f"input cannot be read past this point ({exc})"
        if got:
            self.buf = "".join(parts)
        return got > 0

    def advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def skip_whitespace(self) -> bool:
        """Move to the next non-whitespace character; False at end of input."""
        if self.pos < len(self.buf) and self.buf[self.pos] not in _WHITESPACE:
            return True
        while True:
            found = _NOT_WHITESPACE.search(self.buf, self.pos)
            if found:
                self.advance(found.start())
                return True
            self.advance(len(self.buf))
            if not self.fill():
                return False

    def skip_line(self) -> None:
        """Move past the next line break (resynchronising after unreadable text)."""
        while True:
            end = self.buf.find("\n", self.pos)
            if end != -1:
                self.advance(end + 1)
                return
            self.advance(len(self.buf))
            if not self.fill():
                return

    def ensure(self, chars: int) -> None:
        while len(self.buf) - self.pos < chars and self.fill():
            pass


def read_json(source: TextSource, *, records_key: str | None = None) -> Iterator[Item | Unreadable]:
    """Every JSON value in ``source``; elements of top-level arrays one by one.

    With ``records_key`` (CloudTrail: ``"Records"``), a document that opens with that key
    holding an array yields the array's elements one by one.
    """
    cursor = _Cursor(text_chunks(source))
    opens_records = (
        re.compile(r'\{[ \t\r\n]*"' + re.escape(records_key) + r'"[ \t\r\n]*:[ \t\r\n]*\[')
        if records_key
        else None
    )
    while cursor.skip_whitespace():
        first = cursor.buf[cursor.pos]
        if first == "[":
            cursor.advance(cursor.pos + 1)
            yield from _elements(cursor, "element")
        elif first == "{" and opens_records is not None and _opens(cursor, opens_records):
            if (yield from _elements(cursor, "record")):
                yield from _close_records(cursor)
        else:
            yield from _document(cursor)
    if cursor.failure:
        yield Unreadable(cursor.line, cursor.failure)


def _opens(cursor: _Cursor, pattern: re.Pattern[str]) -> bool:
    cursor.ensure(_LOOKAHEAD)
    found = pattern.match(cursor.buf, cursor.pos)
    if found is None:
        return False
    cursor.advance(found.end())
    return True


def _document(cursor: _Cursor) -> Iterator[Item | Unreadable]:
    """One top-level value; a complete line goes through ``orjson`` first."""
    line = cursor.line
    end = cursor.buf.find("\n", cursor.pos)
    while end == -1 and len(cursor.buf) - cursor.pos <= MAX_ITEM_CHARS:
        seen = len(cursor.buf) - cursor.pos
        if not cursor.fill():
            break
        end = cursor.buf.find("\n", cursor.pos + seen)
    if end == -1:
        if len(cursor.buf) - cursor.pos > MAX_ITEM_CHARS:
            yield Unreadable(line, f"line is longer than {MAX_ITEM_CHARS} characters")
            cursor.skip_line()
            return
        end = len(cursor.buf)
    try:
        value = orjson.loads(cursor.buf[cursor.pos : end])
    except orjson.JSONDecodeError:
        pass  # a pretty-printed document, several on one line, or not JSON at all
    else:
        cursor.advance(end)
        yield Item(line, value)
        return
    decoded = _decode(cursor)
    if isinstance(decoded, str):
        yield Unreadable(line, decoded)
        cursor.skip_line()
    else:
        yield Item(line, decoded[0])


def _decode(cursor: _Cursor) -> tuple[Any] | str:
    """Decode the value at the cursor and move past it, or say why it cannot be decoded."""
    while True:
        try:
            value, stop = _DECODER.raw_decode(cursor.buf, cursor.pos)
        except json.JSONDecodeError as exc:
            truncated = exc.msg.startswith("Unterminated string") or len(cursor.buf) - exc.pos < 16
            too_big = len(cursor.buf) - cursor.pos > MAX_ITEM_CHARS
            if truncated and not too_big and cursor.fill():
                continue
            if too_big:
                return f"value is longer than {MAX_ITEM_CHARS} characters"
            return f"not valid JSON: {exc.msg}"
        except (ValueError, RecursionError) as exc:
            return f"not valid JSON: {exc}"
        at_end = stop == len(cursor.buf) and not isinstance(value, dict | list)
        if at_end and cursor.fill():
            continue  # a number at the end of the buffer may go on in the next chunk
        cursor.advance(stop)
        return (value,)


def _elements(cursor: _Cursor, noun: str) -> Generator[Item | Unreadable, None, bool]:
    """The elements of the array whose ``[`` the cursor has just passed; True if it closed."""
    index = 0
    fast: _FastPath | None = None
    while True:
        if not cursor.skip_whitespace():
            yield Unreadable(cursor.line, f"input ends inside an array after {noun} {index}")
            return False
        if cursor.buf[cursor.pos] == "]":
            cursor.advance(cursor.pos + 1)
            return True
        if index:
            if cursor.buf[cursor.pos] != ",":
                yield Unreadable(cursor.line, f"expected `,` or `]` after {noun} {index}")
                cursor.skip_line()
                return False
            cursor.pos += 1  # past the comma (not a line break: the line stays)
            if not cursor.skip_whitespace():
                continue
        line = cursor.line
        index += 1
        decoded = (fast and fast.take(cursor)) or _decode(cursor)
        if isinstance(decoded, str):
            # Inside an array there is no safe place to resume: give up on the rest of it.
            yield Unreadable(line, f"{noun} {index}: {decoded}; rest of the array skipped")
            cursor.skip_line()
            return False
        if index == 1 and isinstance(decoded[0], dict) and decoded[0]:
            fast = _FastPath.for_key(next(iter(decoded[0])))
        yield Item(line, decoded[0], f"{noun} {index}")


class _FastPath:
    """Decodes array elements with ``orjson`` when they share their first key.

    CloudTrail writes every record as ``{"eventVersion": ...}``, so ``},{"eventVersion":``
    almost always ends a record. The text up to such a boundary is taken for the element
    only if it decodes completely: a prefix of JSON text that is a complete object *is*
    the object, so a look-alike inside the element (a nested array of similar objects)
    merely fails the check and the standard-library scanner takes over. After repeated
    misses (elements of other shapes) the fast path gives up on the array.
    """

    __slots__ = ("_misses", "_pattern")

    @classmethod
    def for_key(cls, first_key: str) -> _FastPath | None:
        """The fast path for elements starting with ``first_key``; ``None`` for a key that
        is not valid text (bytes that are not UTF-8, kept as surrogates): the standard
        scanner reads those elements."""
        try:
            return cls(first_key)
        except TypeError:  # orjson refuses surrogates
            return None

    def __init__(self, first_key: str) -> None:
        key = re.escape(orjson.dumps(first_key).decode())
        self._pattern = re.compile(r"\}[ \t\r\n]*,[ \t\r\n]*\{[ \t\r\n]*" + key + r"[ \t\r\n]*:")
        self._misses = 0

    def take(self, cursor: _Cursor) -> tuple[Any] | None:
        """The element at the cursor, moving past it; None when the fast path cannot tell."""
        if self._misses >= _FAST_PATH_MISSES or cursor.buf[cursor.pos] != "{":
            return None
        start = cursor.pos
        found = self._pattern.search(cursor.buf, start, start + _FAST_PATH_WINDOW)
        if found is None and len(cursor.buf) - start < _FAST_PATH_WINDOW and cursor.fill():
            # The buffer ended inside the element: read on rather than take the slow path.
            start = cursor.pos
            found = self._pattern.search(cursor.buf, start, start + _FAST_PATH_WINDOW)
        if found is not None:
            try:
                value = orjson.loads(cursor.buf[start : found.start() + 1])
            except orjson.JSONDecodeError:
                pass
            else:
                self._misses = 0
                cursor.advance(found.start() + 1)
                return (value,)
        self._misses += 1  # the last element, one cut by the buffer's end, or another shape
        return None


def _close_records(cursor: _Cursor) -> Iterator[Unreadable]:
    """Finish the object after its ``Records`` array, passing over any other members."""
    while cursor.skip_whitespace():
        char = cursor.buf[cursor.pos]
        if char == "}":
            cursor.advance(cursor.pos + 1)
            return
        problem = _skip_member(cursor) if char == "," else f"unexpected `{char}`"
        if problem:
            break
    else:
        problem = "input ends inside the object"
    yield Unreadable(cursor.line, f"after the `Records` array: {problem}")
    cursor.skip_line()


def _skip_member(cursor: _Cursor) -> str | None:
    """Pass over ``, "key": value``; say what is wrong if it is not that."""
    cursor.advance(cursor.pos + 1)
    if not cursor.skip_whitespace():
        return "input ends inside the object"
    key = _decode(cursor)
    if isinstance(key, str) or not isinstance(key[0], str):
        return "expected a member name"
    if not cursor.skip_whitespace() or cursor.buf[cursor.pos] != ":":
        return "expected `:`"
    cursor.advance(cursor.pos + 1)
    if not cursor.skip_whitespace():
        return "input ends inside the object"
    value = _decode(cursor)
    return value if isinstance(value, str) else None
