"""Case numbers: random, with a check character, read forgivingly; old numbers still read."""

from __future__ import annotations

import re

import pytest

from actions.case_status import ValidateCaseStatusForm, read_case_number
from actions.form_answers import Reply
from handover.cases.numbers import (
    ALPHABET,
    EXAMPLE,
    find_case_number,
    is_valid,
    new_case_number,
    new_number,
    normalise_case_number,
    normalise_number,
)

SHAPE = re.compile(r"MM-2026-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")


def reply(text: str, entities: dict[str, str] | None = None) -> Reply:
    return Reply(text, "check_status", entities or {})


def test_new_numbers_are_random_well_formed_and_valid() -> None:
    numbers = {new_case_number(2026) for _ in range(2000)}
    assert len(numbers) == 2000
    assert all(SHAPE.fullmatch(number) for number in numbers)
    assert all(normalise_case_number(number) == number for number in numbers)
    # Not sequential: no two share their seven random characters before the check
    # character (six, as before, collided in one run of about sixteen: 32^5 values once
    # the dash is counted, for 2,000 numbers).
    assert len({number[8:16] for number in numbers}) == 2000
    assert normalise_case_number(EXAMPLE) == EXAMPLE


def test_every_single_mistyped_character_is_caught() -> None:
    code = EXAMPLE.replace("-", "")[6:]
    for position in range(len(code)):
        for symbol in ALPHABET:
            if symbol != code[position]:
                assert not is_valid(code[:position] + symbol + code[position + 1 :])


def test_adjacent_swaps_are_mostly_caught() -> None:
    caught = total = 0
    for _ in range(300):
        code = new_case_number(2026).replace("-", "")[6:]
        for i in range(len(code) - 1):
            if code[i] != code[i + 1]:
                total += 1
                caught += not is_valid(code[:i] + code[i + 1] + code[i] + code[i + 2 :])
    assert caught / total > 0.95


@pytest.mark.parametrize(
    "written",
    ["mm-2026-7k3q-9xhg", "MM 2026 7K3Q 9XHG", "MM-2026-7K3Q9XHG", "mm20267k3q9xhg",
     " MM-2026-7K3Q-9XHG ", "MM-2026-7K3Q-9XHG".replace("Q", "q")],
)  # fmt: skip
def test_numbers_are_read_however_they_are_written(written: str) -> None:
    assert normalise_case_number(written) == EXAMPLE


def test_o_i_and_l_are_read_as_zero_and_one() -> None:
    number = next(
        n for n in iter(lambda: new_case_number(2026), None) if "0" in n[8:] and "1" in n[8:]
    )
    loose = number[:8] + number[8:].replace("0", "o").replace("1", "I")
    assert normalise_case_number(loose) == number


@pytest.mark.parametrize(
    "text", ["MM-12", "MM-2026-12", "MM-2026-7K3Q-9XHH", "MM-2026-7K3Q", "MM-2026-7K3Q-9XHG-1", ""]
)
def test_malformed_or_mistyped_numbers_are_refused(text: str) -> None:
    assert normalise_case_number(text) is None


def test_old_sequential_numbers_stay_readable() -> None:
    assert normalise_case_number("mm-2026-000123") == "MM-2026-000123"
    assert find_case_number("Stand von MM 2025 004711?") == "MM-2025-004711"


def test_the_bot_reads_a_number_from_a_sentence_or_its_entity() -> None:
    assert read_case_number(reply("Wie ist der Stand von mm 2026 7k3q 9xhg?")) == EXAMPLE
    assert read_case_number(reply("egal", {"case_number": "MM-2026-7K3Q-9XHG"})) == EXAMPLE
    assert read_case_number(reply("Stand von MM-2026-000123")) == "MM-2026-000123"
    # A typo in the number: nothing is read, so the form asks again before any look-up.
    assert read_case_number(reply("Stand von MM-2026-7K3Q-9XHH")) is None
    assert read_case_number(reply("MM-12")) is None


def test_a_postal_code_after_the_number_is_the_verifier() -> None:
    form = ValidateCaseStatusForm()
    assert form.read("case_verifier", reply(f"{EXAMPLE} und PLZ 80331"), asked=False) == "80331"
    assert form.read("case_verifier", reply(f"{EXAMPLE}"), asked=False) is None
    assert "MM-2026-7K3Q-9XHG" in ValidateCaseStatusForm.hints["case_number"]


def test_other_records_use_the_scheme_with_a_prefix_of_their_own() -> None:
    number = new_number("PV", 2026)
    assert re.fullmatch(r"PV-2026-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", number)
    code = number[8:].lower().replace("-", "").replace("0", "o").replace("1", "l")
    typed = f"pv 2026 {code}"  # Crockford: O is read as 0, L as 1
    assert normalise_number(typed, "PV") == number
    assert normalise_number(number, "MM") is None
    assert normalise_case_number(number) is None
    wrong = number[:-1] + ("X" if number[-1] != "X" else "Y")  # the check character no longer fits
    assert normalise_number(wrong, "PV") is None
