"""A multipart/form-data body read into memory, with limits, while it streams in.

Starlette's own form parser spools files over 1 MB to a temporary file on disk;
an application's upload is personal data whose every copy must be covered by
the retention and erasure rules, so it is collected here in memory only and
the body is never written anywhere but Redis. The whole body is bounded before
this runs (`handover/ops/body_limit.py`, the route's own limit), so memory per
request stays at that limit; the counts below bound the bookkeeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_PARTS = 40
MAX_FIELD_BYTES = 4096


class MalformedForm(ValueError):
    """The body is not a form this gateway reads (the message says why, in English)."""


@dataclass(slots=True)
class UploadedFile:
    """One file part: the name the browser gave it (never trusted) and its bytes."""

    filename: str
    data: bytes


@dataclass(slots=True)
class Form:
    """Text fields (the first value of each name) and file parts by field name."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


@dataclass(slots=True)
class _Part:
    disposition: bytes = b""
    data: bytearray = field(default_factory=bytearray)
    header_name: bytes = b""
    header_value: bytes = b""
    name: str = ""
    filename: str | None = None


def boundary_of(content_type: str) -> bytes:
    """The boundary of a multipart/form-data content type; MalformedForm otherwise."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise MalformedForm("expected multipart/form-data with a boundary")
    return boundary


async def read_form(content_type: str, chunks: AsyncIterator[bytes], files: set[str]) -> Form:
    """Parse the streamed body; only the file fields named in `files` may carry a file."""
    form = Form()
    part = _Part()
    parts = 0

    def on_part_begin() -> None:
        nonlocal part, parts
        parts += 1
        if parts > MAX_PARTS:
            raise MalformedForm("too many parts")
        part = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.header_name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part.header_value += data[start:end]

    def on_header_end() -> None:
        if part.header_name.lower() == b"content-disposition":
            part.disposition = part.header_value
        part.header_name = part.header_value = b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(part.disposition)
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if part.name not in files or part.name in form.files:
                raise MalformedForm(f"unexpected file part {part.name!r}")
            part.filename = options[b"filename"].decode("utf-8", "replace")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part.data += data[start:end]
        if part.filename is None and len(part.data) > MAX_FIELD_BYTES:
            raise MalformedForm(f"field {part.name!r} is too long")

    def on_part_end() -> None:
        if part.filename is not None:
            form.files[part.name] = UploadedFile(part.filename, bytes(part.data))
        elif part.name and part.name not in form.fields:
            try:
                form.fields[part.name] = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedForm(f"field {part.name!r} is not UTF-8") from None

    parser = MultipartParser(
        boundary_of(content_type),
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise MalformedForm(f"not a well-formed multipart body ({exc})") from None
    return form
