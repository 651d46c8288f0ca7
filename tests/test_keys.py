"""Redis key names: one module spells them, and they keep the layout the docs promise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handover import keys

ROOT = Path(__file__).resolve().parent.parent


def test_no_module_but_the_key_module_spells_a_redis_name() -> None:
    spelled = re.compile(r"""["']bs:""")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for part in ("handover", "actions", "bot")
        for path in sorted((ROOT / part).rglob("*.py"))
        if path != ROOT / "handover" / "keys.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if spelled.search(line)
    ]
    assert offenders == []


def test_a_conversations_keys_share_one_hash_tag() -> None:
    tags = {re.search(r"\{(.*?)\}", key).group(1) for key in keys.conversation_keys("c-1")}  # type: ignore[union-attr]
    assert tags == {"c-1"}
    assert keys.case_history("MM-2026-7K3Q-9XHG").startswith(keys.case("MM-2026-7K3Q-9XHG"))


def test_names_of_personal_identifiers_are_hashed() -> None:
    assert "c-1" not in keys.erased("c-1")
    assert "secret-token" not in keys.legacy_token("secret-token")


def test_a_script_gets_every_name_as_a_lua_string() -> None:
    script = keys.in_script(
        "PUBLISH($BORN, x); PUBLISH($REPLICA .. h)", BORN="bs:a", REPLICA="bs:r:"
    )
    assert script == "PUBLISH('bs:a', x); PUBLISH('bs:r:' .. h)"
    with pytest.raises(ValueError, match="Lua"):
        keys.in_script("$X", X="it's")
