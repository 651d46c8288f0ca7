"""Masking of contact and bank data (e-mail addresses, phone numbers, IBANs) in text.

Log lines and metrics must not carry what identifies a citizen, at any level:
what a citizen typed can end up in an exception, a library's warning or a
debug line. Every process's logging passes its lines through
`mask_personal_data` (handover/ops/log_config.py, bot/private_logs.py, the action
server's entry point), so this module uses the standard library only: it is
imported by Rasa's Python 3.10 environment too.

The patterns err on the side of masking: a false positive costs a log reader a
number, a false negative exposes a citizen.
"""

from __future__ import annotations

import re

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"
IBAN_MASK = "[iban]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# +49 30 1234567, 0049 (0)30 123 45 67, 0171/2345678, 030-1234567: a leading +, 00 or
# the trunk 0, then at least six more digits in groups. Not inside a word, an address
# (1.2.3.4, host:5005) or a path; ISO timestamps start with the year and never match.
_PHONE = re.compile(r"(?<![\w/.:+-])(?:\+|00|0)[1-9](?:[ /()-]{0,3}\d){5,15}(?!\w)")
# A country code, two check digits, then 11–30 letters or digits, grouped by four or not.
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}"
    r"(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?(?![A-Za-z0-9])"
)


def _iban_checksum_holds(candidate: str) -> bool:
    """ISO 13616 mod-97 check: lower-case shapes are masked only when they are real IBANs."""
    compact = candidate.replace(" ", "").upper()
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    return int(digits) % 97 == 1


def _iban(match: re.Match[str]) -> str:
    text = match.group(0)
    if text[:2].isupper() or _iban_checksum_holds(text):
        return IBAN_MASK
    return text


def mask_personal_data(text: str) -> str:
    """`text` with every e-mail address, phone number and IBAN replaced by a placeholder."""
    if not text:
        return text
    text = _EMAIL.sub(EMAIL_MASK, text)
    text = _IBAN.sub(_iban, text)
    return _PHONE.sub(PHONE_MASK, text)
