"""What an upload is, judged by its bytes: the client's file name and content type are not.

A browser reports a type from the file's extension, and any client can send
any name and type, so a text or an executable renamed to ``lageplan.pdf``
would pass a check of either. The signature at the start of the file decides
(the same one the form's script checks before it sends), and the type stored
and exported with the file is the one found here. The name must then not claim
another type: staff open ``lageplan.pdf`` expecting a PDF, so a PNG under that
name is refused as well (the citizen is told to choose the right file).
"""

from __future__ import annotations

from typing import Literal

MediaType = Literal["application/pdf", "image/png", "image/jpeg"]

# 5 MiB: what the form tells citizens as "höchstens 5 MB".
MAX_UPLOAD_BYTES = 5 * 1024 * 1024

_SIGNATURES: tuple[tuple[bytes, MediaType], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def sniff(data: bytes) -> MediaType | None:
    """The media type the bytes begin like, or None for anything else (or nothing)."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    return None


_EXTENSIONS: dict[MediaType, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
}


def name_fits(filename: str, media_type: MediaType) -> bool:
    """Whether the file name ends as a file of `media_type` does (any case)."""
    return filename.lower().endswith(_EXTENSIONS[media_type])


def safe_filename(name: str) -> str:
    """The browser's file name as something to show and export: no path, no controls."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable()).strip()
    return cleaned[:120] or "upload"
