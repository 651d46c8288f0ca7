"""Index build and search on a few real articles: incremental, atomic, robust to bad queries."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from knowledge_index.build import BuildOptions, BuildReport, build
from knowledge_index.dense import VectorIndex
from knowledge_index.documents import SectionKind
from knowledge_index.errors import SourceError
from knowledge_index.search import Band, KnowledgeIndex, wanted_section
from knowledge_index.store import CURRENT, index_root

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ["personalausweis-beantragen", "reisepass-beantragen", "sperrmuell-anmelden",
            "hundesteuer-anmelden", "wohnsitz-anmelden", "fundbuero"]  # fmt: skip


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("articles")
    for name in ARTICLES:
        shutil.copy(ROOT / "data" / "knowledge" / f"{name}.md", folder)
    return folder


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def _build(source: Path, models_dir: Path, **options: object) -> BuildReport:
    # The packaged model without fine-tuning keeps these tests fast; fine-tuning is
    # exercised by the Munich evaluation and the conversation test.
    return build(BuildOptions(source=source, models_dir=models_dir, finetune=False, **options))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def index(source: Path, models_dir: Path) -> KnowledgeIndex:
    report = _build(source, models_dir)
    assert not report.up_to_date and report.embedded == report.chunks > len(ARTICLES)
    return KnowledgeIndex.load(Path(report.path))


def test_a_fee_question_gets_the_fee_passage_of_the_right_service(index: KnowledgeIndex) -> None:
    result = index.search("Was kostet ein Personalausweis?")
    assert result.hits[0].doc_id == "personalausweis-beantragen"
    assert result.hits[0].passage.kind is SectionKind.FEES and "€" in result.hits[0].passage.text
    assert result.band is Band.ANSWER


def test_a_where_question_gets_the_office(index: KnowledgeIndex) -> None:
    hit = index.search("Wo kann ich Sperrmüll anmelden?").hits[0]
    assert hit.doc_id == "sperrmuell-anmelden"
    assert hit.passage.kind is SectionKind.OFFICE and "Gewerbering 10" in hit.passage.text


def test_structured_fields_are_recognised_in_questions() -> None:
    assert wanted_section("Was kostet der Pass?") is SectionKind.FEES
    assert wanted_section("Welche Unterlagen muss ich mitbringen?") is SectionKind.DOCUMENTS
    assert wanted_section("Wo ist das Fundbüro?") is SectionKind.OFFICE
    assert wanted_section("Wie lange dauert das?") is None


@pytest.mark.parametrize("query", ["", "   \n\t ", "?!", "\u200b"])
def test_empty_queries_get_no_answer(index: KnowledgeIndex, query: str) -> None:
    result = index.search(query)
    assert result.band is Band.NONE and result.hits == []


def test_a_10000_character_query_is_answered_quickly(index: KnowledgeIndex) -> None:
    result = index.search("Personalausweis " * 625)
    assert len("Personalausweis " * 625) == 10_000
    assert result.hits[0].doc_id == "personalausweis-beantragen"


def test_an_unchanged_source_is_not_rebuilt(
    source: Path, models_dir: Path, index: KnowledgeIndex
) -> None:
    report = _build(source, models_dir)
    assert report.up_to_date and Path(report.path) == index.path


def test_a_rebuild_re_embeds_only_the_changed_document(
    source: Path, models_dir: Path, index: KnowledgeIndex
) -> None:
    article = source / "fundbuero.md"
    original = article.read_text()
    try:
        article.write_text(
            original.replace("## Kosten\n", "## Kosten\nNeu: Die Abholung ist montags kostenlos.\n")
        )
        report = _build(source, models_dir)
        rebuilt = KnowledgeIndex.load(Path(report.path))
        changed = [c for c in rebuilt.chunks if c.doc_id == "fundbuero"]
        assert 0 < report.embedded <= len(changed)
        assert report.reused == report.chunks - report.embedded
        assert report.reused >= len(index.chunks) - len(changed)
    finally:
        article.write_text(original)
        _build(source, models_dir)


def test_a_failed_build_leaves_the_previous_index_in_place(
    source: Path, models_dir: Path, index: KnowledgeIndex
) -> None:
    current = index_root(models_dir, source) / CURRENT
    before = current.resolve()
    broken = source / "kaputt.md"
    broken.write_text("---\nid: kaputt\ntitle: [nicht geschlossen\n---\n## Kosten\nx\n")
    try:
        with pytest.raises(SourceError, match=r"kaputt\.md"):
            _build(source, models_dir)
    finally:
        broken.unlink()
    assert current.resolve() == before
    assert KnowledgeIndex.load(current).search("Reisepass").hits[0].doc_id == "reisepass-beantragen"
    assert not list(index_root(models_dir, source).glob("*.partial"))


def test_exact_and_approximate_dense_indexes_share_one_interface() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = VectorIndex.build(vectors, exact_max=5000)
    approximate = VectorIndex.build(vectors, exact_max=1000)
    assert not exact.approximate and approximate.approximate
    query = vectors[42]
    for vector_index in (exact, approximate):
        scores, ids = vector_index.search(query, 5)
        assert ids[0] == 42 and scores[0] == pytest.approx(1.0, abs=1e-4)


def test_the_traced_query_encoder_gives_the_batch_encoders_vectors(index: KnowledgeIndex) -> None:
    queries = ["Was kostet ein Personalausweis?", "Sperrmüll", "Wo ist das Fundbüro?"]
    batch = index.encoder.encode(queries)
    one_by_one = np.concatenate([index.encoder.encode_query(q) for q in queries])
    assert index.encoder._traced is not None  # the fast path is the one in use
    assert np.allclose(batch, one_by_one, atol=1e-5)
    again = index.encoder.encode_query(queries[0])  # from the query cache, an independent copy
    again[:] = 0
    assert np.allclose(index.encoder.encode_query(queries[0]), batch[:1], atol=1e-5)


def test_character_ngram_scores_equal_the_vectorizers_tf_idf_cosine(index: KnowledgeIndex) -> None:
    for query in ["Personalausweis verloren", "Hundesteuer", "xq", ""]:
        expected = (index.char.vectorizer.transform([query]) @ index.char.matrix_t).toarray()[0]
        assert np.allclose(index.char.scores(query), expected, atol=1e-6)


def test_cross_validation_ranks_each_question_by_weights_fit_without_it() -> None:
    # BM25 always ranks the right service first, the other methods never do: weights
    # fit on any four folds must find that out, so every held-out question is a hit.
    from knowledge_index.params import METHODS, Example, cross_validate

    rng = np.random.default_rng(1)
    examples = []
    for right in range(20):
        scores = {m: rng.random(30).astype(np.float32) for m in METHODS}
        scores["bm25"][right] = 2.0
        for m in METHODS[1:]:
            scores[m][right] = 0.0
        examples.append(Example(scores=scores, expected={right}))
    examples.append(Example(scores={m: rng.random(30).astype(np.float32) for m in METHODS},
                            expected=set()))  # fmt: skip
    figures = cross_validate(examples, seeds=2)
    assert figures["cv_hit@1"] == 1.0 and figures["cv_hit@5"] == 1.0
    assert figures["cv_answer_precision"] == 1.0


def test_cross_validation_folds_never_share_a_service() -> None:
    from knowledge_index.params import Example, _service_folds

    scores = {"bm25": np.zeros(3, dtype=np.float32)}
    examples = [Example(scores, {i % 3}) for i in range(12)] + [Example(scores, set())]
    for seed in range(3):
        folds = _service_folds(examples, 3, seed)
        assert sorted(i for fold in folds for i in fold) == list(range(13))
        services = [
            {min(examples[i].expected) for i in fold if examples[i].expected} for fold in folds
        ]
        assert all(not (a & b) for n, a in enumerate(services) for b in services[n + 1 :])


def test_conversation_lines_give_their_concerns_as_questions(tmp_path: Path) -> None:
    # A conversation file (make conversation-eval's format) fits and evaluates the search on
    # its turns without a facet: first turns, topic switches and out-of-scope turns.
    from knowledge_index.build import load_questions

    questions = tmp_path / "mixed.jsonl"
    questions.write_text(
        '{"query": "Wie melde ich ein Gewerbe an?", "expected": [1]}\n'
        '{"id": "c1", "turns": [{"text": "Ich ziehe um", "expected": ["7"], "facet": null},'
        ' {"text": "Was kostet das?", "expected": ["7"], "facet": "cost"},'
        ' {"text": "Kennen Sie ein Café?", "expected": [], "facet": null}]}\n',
        encoding="utf-8",
    )
    assert load_questions(questions) == [
        {"query": "Wie melde ich ein Gewerbe an?", "expected": ["1"]},
        {"query": "Ich ziehe um", "expected": ["7"]},
        {"query": "Kennen Sie ein Café?", "expected": []},
    ]
    questions.write_text('{"turns": [{"expected": ["7"], "facet": null}]}\n', encoding="utf-8")
    with pytest.raises(SourceError, match="line 1 has no string 'query'"):
        load_questions(questions)


def test_fine_tuning_anchors_include_situations_of_two_sentences() -> None:
    # Citizens describe a situation in several sentences; single-sentence anchors left the
    # encoder lost on such questions (docs/knowledge.md, "Fine-tuning").
    from knowledge_index.documents import Document, Section
    from knowledge_index.finetune import FinetuneConfig, training_pairs

    sentences = [f"Satz Nummer {n} über die Hundesteuer." for n in range(1, 7)]
    document = Document(
        id="9", title="Hundesteuer", url="https://example.org/9", summary="Steuer für Hunde.",
        sections=(Section("Beschreibung", " ".join(sentences)),),
    )  # fmt: skip
    anchors = [a for a, _, doc in training_pairs([document], FinetuneConfig()) if doc == "9"]
    assert f"{sentences[0]} {sentences[1]}" in anchors
    assert sum(1 for a in anchors if a.count("Satz Nummer") == 2) == 4
    assert all(s in anchors for s in sentences)


def test_an_index_built_by_other_code_is_rebuilt(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # How a source is read or fine-tuned on changes what the index holds: a deployment that
    # updates the code must not keep serving the index the old code built.
    code = tmp_path / "sources.py"
    code.write_text("SUMMARY = 'first line'\n")
    monkeypatch.setattr("knowledge_index.build.BUILD_CODE", (code,))
    models = tmp_path / "models"
    first = _build(source, models)
    assert not first.up_to_date
    assert _build(source, models).up_to_date
    code.write_text("SUMMARY = 'first line that says something'\n")
    again = _build(source, models)
    assert not again.up_to_date and again.path != first.path
    assert again.embedded == 0  # the same chunks: their vectors are reused


def test_english_questions_get_thresholds_of_their_own() -> None:
    # German questions are right when their top score is high; English ones, searched with
    # the dictionary's words, score lower for the same certainty. Their own thresholds let
    # them be answered; with too few English questions they keep the German ones.
    from knowledge_index.params import METHODS, MIN_ENGLISH, Example, fit

    rng = np.random.default_rng(7)

    def example(top: float, right: bool, english: bool) -> Example:
        scores = {m: (rng.random(40) * 0.1).astype(np.float32) for m in METHODS}
        for m in METHODS:
            scores[m][0] = top
        return Example(scores=scores, expected={0 if right else 1}, english=english)

    german = [example(t, t > 0.5, False) for t in np.linspace(0.2, 0.9, 30)]
    english = [example(t, t > 0.25, True) for t in np.linspace(0.15, 0.45, 20)]
    params = fit(german, "test", english=english)
    answer, suggest = params.thresholds(english=True)
    assert answer < params.answer_threshold and suggest <= answer
    assert params.thresholds(english=False) == (params.answer_threshold, params.suggest_threshold)
    few = fit(german, "test", english=english[: MIN_ENGLISH - 1])
    assert few.english_answer_threshold is None
    assert few.thresholds(english=True) == (few.answer_threshold, few.suggest_threshold)
