"""Masking of contact and bank data in log text (handover/privacy/masking.py)."""

from __future__ import annotations

import pytest

from handover.privacy.masking import mask_personal_data


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Meine Adresse: lena.maier+bau@example.org.", "Meine Adresse: [email]."),
        ("Rufen Sie mich an: 0171 2345678", "Rufen Sie mich an: [phone]"),
        ("Tel. +49 30 1234567 oder 030/1234567", "Tel. [phone] oder [phone]"),
        ("0049 (0)89 233-96000", "[phone]"),
        ("IBAN DE89 3704 0044 0532 0130 00 bitte", "IBAN [iban] bitte"),
        ("iban de89370400440532013000", "iban [iban]"),
    ],
)
def test_contact_and_bank_data_are_masked(text: str, masked: str) -> None:
    assert mask_personal_data(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-02T03:04:05.123Z seq=1234567 took 12.5 ms",
        "127.0.0.1:5005 conversation 5f2e0c1d7a9b4e6f8a0b1c2d3e4f5a6b",
        "case MM-2026-000123, PLZ 80331, pid 123456789",
        "Was kostet ein Personalausweis?",
    ],
)
def test_what_a_log_reader_needs_stays(text: str) -> None:
    """Timestamps, ids, addresses, case numbers: not mistaken for phone numbers or IBANs."""
    assert mask_personal_data(text) == text
