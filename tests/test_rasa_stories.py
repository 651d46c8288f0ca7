"""The conversation tests in Rasa's own test-story format pass with the trained model."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.services import BOT_VENV, RASA_MODEL, ROOT

pytestmark = pytest.mark.rasa


def test_every_flow_of_the_test_stories_is_predicted_as_written(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BOT_VENV / "bin" / "rasa"), "test", "core", "--stories", "tests/stories",
         "--model", str(RASA_MODEL), "--out", str(tmp_path), "--fail-on-prediction-errors"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # the pipeline's bot.unknown_words
    )  # fmt: skip
    failed = tmp_path / "failed_test_stories.yml"
    report = failed.read_text() if failed.exists() else ""
    assert done.returncode == 0, report + done.stderr[-3000:]
