"""Retrieval metrics on a question file: hit@1, hit@5, mrr@10, false-answer rate."""

from __future__ import annotations

from knowledge_index.search import Band, KnowledgeIndex


def evaluate(index: KnowledgeIndex, questions: list[dict[str, object]]) -> dict[str, float | int]:
    """Ranking metrics over answerable questions; band metrics over all of them.

    `false_answer_rate` is the share of unanswerable questions that land in the
    answer band; `answer_precision` the share of answers whose top service is right.
    """
    hit1 = hit5 = reciprocal = 0.0
    answerable = unanswerable = false_answers = answered = right_answers = suggested = 0
    for question in questions:
        expected = set(question["expected"])  # type: ignore[call-overload]
        result = index.search(str(question["query"]), k=10)
        ranked = [hit.doc_id for hit in result.hits]
        if result.band is Band.ANSWER:
            answered += 1
            right_answers += bool(ranked and ranked[0] in expected)
        suggested += result.band is Band.SUGGEST
        if not expected:
            unanswerable += 1
            false_answers += result.band is Band.ANSWER
            continue
        answerable += 1
        for rank, doc_id in enumerate(ranked, 1):
            if doc_id in expected:
                hit1 += rank == 1
                hit5 += rank <= 5
                reciprocal += 1 / rank
                break
    n = max(answerable, 1)
    return {
        "n": answerable,
        "n_unanswerable": unanswerable,
        "hit@1": round(hit1 / n, 4),
        "hit@5": round(hit5 / n, 4),
        "mrr@10": round(reciprocal / n, 4),
        "false_answer_rate": round(false_answers / max(unanswerable, 1), 4),
        "answer_rate": round(answered / max(len(questions), 1), 4),
        "answer_precision": round(right_answers / max(answered, 1), 4),
        "suggest_rate": round(suggested / max(len(questions), 1), 4),
    }
