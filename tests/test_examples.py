"""Example questions per service: read strictly, matched by meaning and words, calibrating."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from knowledge_index import calibration
from knowledge_index.build import BuildOptions, build
from knowledge_index.errors import SourceError
from knowledge_index.examples import ExampleIndex, ExampleQuestion, load_examples
from knowledge_index.params import METHODS, Example, fit_weights, weight_grid
from knowledge_index.search import KnowledgeIndex

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ["hundesteuer-anmelden", "sperrmuell-anmelden", "fundbuero", "wohnsitz-anmelden"]

# Two writers' phrasings of the same four concerns, in words the articles do not use.
WRITER_A = {
    "hundesteuer-anmelden": [
        "Wir haben seit letzter Woche einen Welpen aus dem Tierheim, was muss ich jetzt tun?",
        "Mein Freund zieht mit seinem Labrador bei mir ein, muss ich den irgendwo melden?",
    ],
    "sperrmuell-anmelden": [
        "Das alte Sofa und der kaputte Kleiderschrank müssen raus, wer holt sowas ab?",
        "Wohin mit der ausrangierten Matratze?",
    ],
    "fundbuero": [
        "Ich hab meinen Schlüsselbund irgendwo in der Straßenbahn liegen lassen.",
        "Im Park lag ein Geldbeutel, wo gebe ich den ab?",
    ],
    "wohnsitz-anmelden": [
        "Ich bin gerade in meine erste eigene Wohnung gezogen, was muss ich amtlich erledigen?",
        "Neu in der Stadt, Mietvertrag unterschrieben, wo muss ich hin?",
    ],
}
WRITER_B = {
    "hundesteuer-anmelden": [
        "Unser neuer Vierbeiner ist eingezogen, müssen wir den anmelden?",
        "Bei uns wohnt jetzt ein Dackel, was kostet das im Jahr?",
    ],
    "sperrmuell-anmelden": [
        "Mein Opa löst seinen Haushalt auf, die ganzen Möbel müssen weg.",
        "alte couch entsorgen",
    ],
    "fundbuero": [
        "Mir ist im Bus mein Regenschirm und die Handschuhe abhandengekommen.",
        "Ich habe ein Fahrrad gefunden, das seit Wochen unabgeschlossen rumsteht.",
    ],
    "wohnsitz-anmelden": [
        "Wir sind letzten Monat hergezogen, muss ich das irgendwo bekannt geben?",
        "Umzug von Hamburg hierher, welche Behörde will das wissen?",
    ],
}


def _write(folder: Path, name: str, lines: list[object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    return path


def _lines(writer: dict[str, list[str]]) -> list[object]:
    return [{"service": s, "kind": "situation", "text": t} for s, ts in writer.items() for t in ts]


def _articles_and_two_writers(tmp_path: Path) -> tuple[Path, Path]:
    """Four real articles and a folder of both writers' examples for them."""
    source = tmp_path / "articles"
    source.mkdir()
    for name in ARTICLES:
        shutil.copy(ROOT / "data" / "knowledge" / f"{name}.md", source)
    folder = tmp_path / "examples"
    _write(folder, "writer-a.jsonl", _lines(WRITER_A))
    _write(folder, "writer-b.jsonl", _lines(WRITER_B))
    return source, folder


def test_examples_are_read_per_writer_and_only_for_the_sources_services(tmp_path: Path) -> None:
    _write(tmp_path, "b.jsonl", _lines(WRITER_B))
    elsewhere = {"service": "not-in-this-city", "kind": "question", "text": "Wo ist das Rathaus?"}
    _write(tmp_path, "a.jsonl", [*_lines(WRITER_A), elsewhere])
    (tmp_path / "notes.txt").write_text("not examples")
    examples = load_examples(tmp_path, set(ARTICLES))
    assert len(examples) == 16
    assert {e.group for e in examples} == {"a", "b"}
    first = WRITER_A["hundesteuer-anmelden"][0]
    assert examples[0] == ExampleQuestion("hundesteuer-anmelden", first, "situation", "a")
    assert load_examples(tmp_path / "missing", set(ARTICLES)) == []
    assert load_examples(None, set(ARTICLES)) == []


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("{not json", "not JSON"),
        ('["a list"]', "not an object"),
        ('{"service": "fundbuero", "kind": "question"}', "field 'text'"),
        ('{"service": "", "kind": "question", "text": "Fundsachen"}', "field 'service'"),
        ('{"service": "fundbuero", "kind": "rumour", "text": "Fundsachen"}', "field 'kind'"),
        ('{"service": "fundbuero", "kind": "question", "text": "' + "x" * 1001 + '"}', "1000"),
    ],
)
def test_a_malformed_example_line_names_its_file_line_and_field(
    tmp_path: Path, line: str, complaint: str
) -> None:
    (tmp_path / "city.jsonl").write_text(
        '{"service": "fundbuero", "kind": "question", "text": "Fundsachen"}\n' + line + "\n"
    )
    with pytest.raises(SourceError, match="line 2") as error:
        load_examples(tmp_path, {"fundbuero"})
    assert "city.jsonl" in str(error.value) and complaint in str(error.value)


def test_a_service_scores_by_its_nearest_example_and_by_the_words_of_all_of_them(
    tmp_path: Path,
) -> None:
    examples = [ExampleQuestion("1", "Welpe aus dem Tierheim", "situation"),
                ExampleQuestion("1", "Dackel wohnt bei uns", "situation"),
                ExampleQuestion("3", "alte Couch entsorgen", "keywords")]  # fmt: skip
    vectors = np.asarray([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    index = ExampleIndex.build(examples, ["0", "1", "2", "3"], vectors)
    index.save(tmp_path)
    loaded = ExampleIndex.load(tmp_path)
    assert loaded is not None and ExampleIndex.load(tmp_path / "none") is None
    query = np.asarray([0.8, 0.6], dtype=np.float32)
    assert np.allclose(loaded.nearest(query), [0, 0.96, 0, 0.6])
    words = loaded.matching_words("Couch")
    assert words[3] > 0 and words[[0, 1, 2]].sum() == 0
    # A service's examples count as one text: words from two of them are all found.
    both, half = loaded.matching_words("Dackel Tierheim"), loaded.matching_words("Dackel Katze")
    assert both[1] > half[1] > 0 and both[[0, 2, 3]].sum() == 0


def test_the_out_of_scope_questions_come_from_the_nlu_data(tmp_path: Path) -> None:
    questions = calibration.out_of_scope_questions(ROOT / "data" / "bot" / "nlu_questions.yml")
    assert len(questions) >= 100 and all(q and not q.startswith("-") for q in questions)
    assert calibration.out_of_scope_questions(tmp_path / "missing.yml") == []
    (tmp_path / "bad.yml").write_text("nlu: [unclosed")
    with pytest.raises(SourceError, match=r"bad\.yml"):
        calibration.out_of_scope_questions(tmp_path / "bad.yml")


def test_the_weight_grid_covers_every_method_and_dead_methods_get_no_weight() -> None:
    grid = weight_grid()
    assert len(grid) == 3003  # six methods in tenths: C(15, 5)
    assert all(abs(sum(w.values()) - 1) < 1e-6 for w in grid)
    assert {"bm25": 1.0, "char": 0.0, "dense": 0.0, "title": 0.0, "examples": 0.0,
            "exwords": 0.0} in grid  # fmt: skip
    # Without example questions two methods score nothing; they must not share the weight.
    rng = np.random.default_rng(3)
    examples = []
    for right in range(12):
        scores = {m: rng.random(20).astype(np.float32) for m in METHODS}
        scores["examples"][:] = scores["exwords"][:] = 0
        scores["bm25"][right] = 2.0
        examples.append(Example(scores=scores, expected={right}))
    weights = fit_weights(examples)
    assert set(weights) == set(METHODS)
    assert weights["examples"] == weights["exwords"] == 0 and weights["bm25"] > 0


def test_a_build_with_examples_finds_services_by_them_and_calibrates_on_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, folder = _articles_and_two_writers(tmp_path)
    outside = ROOT / "data" / "bot" / "nlu_questions.yml"
    options = BuildOptions(source=source, models_dir=tmp_path / "models", finetune=False,
                           examples=folder, unanswerable=outside)  # fmt: skip
    # Sixteen examples are too few to fit on: the shipped defaults stay.
    few = build(options)
    assert few.examples == 16 and "muenchen-dev-questions" in str(few.params["fitted_on"])
    monkeypatch.setattr(calibration, "MIN_CALIBRATION", 8)
    report = build(replace(options, force=True))
    assert report.examples == 16
    assert "16 example questions of 2 writers" in str(report.params["fitted_on"])
    index = KnowledgeIndex.load(Path(report.path))
    assert index.examples is not None
    result = index.search("Seit gestern haben wir einen kleinen Welpen, was ist zu tun?")
    assert result.hits[0].doc_id == "hundesteuer-anmelden"
    # Adding an example file changes the build's inputs: the next build is not up to date.
    _write(folder, "writer-c.jsonl", [{"service": "fundbuero", "kind": "keywords",
                                       "text": "Schirm vergessen"}])  # fmt: skip
    again = build(options)
    assert not again.up_to_date and again.examples == 17
