"""Every setting is documented where operators look: the README's configuration table."""

from __future__ import annotations

from handover.settings import Settings
from tests.services import ROOT


def test_the_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in readme]
    assert missing == []
