"""Case numbers: random, short, easy to read aloud and type, with a check character.

``MM-<year>-XXXX-XXXC``: seven random characters and one check character in
Crockford's Base32 alphabet (digits and letters without I, L, O and U, so no
0/O or 1/I/L confusion and no accidental words), grouped in fours. 35 random
bits: with 50,000 cases a year, a guessed number hits one in ~690,000 tries,
and look-ups are limited per client (handover/cases/store.py), so numbers cannot be
walked as the old sequential ``MM-<year>-000123`` could. The check character
(Luhn mod 32) catches every single mistyped character and most swapped
neighbours before a look-up is spent.

Reading is forgiving: lower case, spaces or no separators, and O/I/L for 0/1/1
(Crockford's decoding rule). Old sequential numbers (``MM-2026-000123``) stay
readable, so cases created before the change can still be looked up.

Other numbered records (applications, ``PV-<year>-XXXX-XXXC``) use the same scheme
with a prefix of their own: `new_number` and `normalise_number`.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_CHARS = 7
_VALUE = {symbol: index for index, symbol in enumerate(ALPHABET)}
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})

LEGACY_NUMBER = re.compile(r"MM-(\d{4})-(\d{6,7})")
NUMBER = re.compile(rf"MM-(\d{{4}})-([{ALPHABET}]{{4}})-([{ALPHABET}]{{4}})")
# A number inside a citizen's sentence, written any forgiving way (old or new form).
IN_TEXT = re.compile(
    r"\bMM[-\s]?(\d{4})[-\s]?(?:(\d{6,7})|([0-9A-Z]{4})[-\s]?([0-9A-Z]{4}))\b", re.IGNORECASE
)
EXAMPLE = "MM-2026-7K3Q-9XHG"  # a valid number, for hints and docs


def check_character(payload: str) -> str:
    """Luhn mod 32 over `payload` (symbols of ALPHABET): the character that completes it."""
    factor, total = 2, 0
    for symbol in reversed(payload):
        addend = factor * _VALUE[symbol]
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def is_valid(code: str) -> bool:
    """Whether eight characters of ALPHABET end with the right check character."""
    return len(code) == RANDOM_CHARS + 1 and check_character(code[:-1]) == code[-1]


def new_number(prefix: str, year: int) -> str:
    """``<prefix>-<year>-XXXX-XXXC``: seven random characters and the check character."""
    payload = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))
    code = payload + check_character(payload)
    return f"{prefix}-{year}-{code[:4]}-{code[4:]}"


def new_case_number(year: int) -> str:
    return new_number("MM", year)


def normalise_number(raw: str, prefix: str) -> str | None:
    """The canonical form of a ``<prefix>-…`` number typed as forgivingly as a case number."""
    match = re.fullmatch(
        rf"{re.escape(prefix)}[-\s]?(\d{{4}})[-\s]?([0-9A-Z]{{4}})[-\s]?([0-9A-Z]{{4}})",
        raw.strip(),
        re.IGNORECASE,
    )
    if match is None:
        return None
    year, first, second = match.groups()
    code = _checked_code(first, second)
    return f"{prefix.upper()}-{year}-{code[:4]}-{code[4:]}" if code else None


def _checked_code(first: str | None, second: str | None) -> str | None:
    """The eight characters as Crockford decodes them, if their check character fits."""
    code = f"{first}{second}".upper().translate(_READ_AS)
    return code if all(symbol in _VALUE for symbol in code) and is_valid(code) else None


def _canonical(year: str, legacy: str | None, first: str | None, second: str | None) -> str | None:
    if legacy:
        return f"MM-{year}-{legacy}"
    code = _checked_code(first, second)
    return f"MM-{year}-{code[:4]}-{code[4:]}" if code else None


def normalise_case_number(raw: str) -> str | None:
    """The canonical form of a whole case number as a citizen may type it, or None."""
    text = raw.strip()
    if LEGACY_NUMBER.fullmatch(text.upper()):
        return text.upper()
    match = IN_TEXT.fullmatch(text)
    return _canonical(*match.groups()) if match else None


def find_case_number(text: str) -> str | None:
    """The first well-formed case number in a sentence, canonical; None if there is none."""
    for match in IN_TEXT.finditer(text):
        number = _canonical(*match.groups())
        if number:
            return number
    return None
