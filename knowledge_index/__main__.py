"""`python -m knowledge_index build|search|eval`: the last stdout line is one JSON object.

    build  [--source PATH] [--fit-questions FILE] [--fit-english FILE] [--force]
                                        build (or confirm) the index
    search [--source PATH] QUERY...                        top services for a query
    eval   --source PATH --questions FILE [--cross-validate]
                                        hit@1, hit@5, mrr@10, false_answer_rate (+ cv_hit@1)

Without --source the configured KNOWLEDGE_SOURCE is used. `eval` builds the index
if needed but never fits on the questions it evaluates: fusion weights and
thresholds come from the build (its --questions, or the shipped defaults).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from knowledge_index.errors import BuildError, SourceError


def _options(args: argparse.Namespace) -> object:
    from handover.settings import get_settings
    from knowledge_index.build import BuildOptions

    settings = get_settings()
    source = Path(args.source) if args.source else settings.knowledge_source
    questions = getattr(args, "fit_questions", None)
    if questions is None and source.resolve() == settings.knowledge_source.resolve():
        questions = settings.knowledge_fit_questions
    return BuildOptions(
        source=source,
        models_dir=settings.knowledge_dir,
        model=settings.knowledge_model,
        finetune=settings.knowledge_finetune,
        questions=Path(questions) if questions else None,
        english_questions=Path(args.fit_english) if getattr(args, "fit_english", None) else None,
        examples=settings.knowledge_examples,
        unanswerable=settings.knowledge_unanswerable,
        exact_max=settings.knowledge_exact_max,
        force=getattr(args, "force", False),
    )


def _build(args: argparse.Namespace) -> tuple[object, Path]:
    from knowledge_index.build import BuildOptions, build

    options = _options(args)
    assert isinstance(options, BuildOptions)
    report = build(options)
    for line in report.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    return report, Path(report.path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge_index")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "search", "eval"):
        sub = commands.add_parser(name)
        sub.add_argument("--source", help="folder of Markdown articles or a DLDB services JSON")
        sub.add_argument(
            "--fit-questions",
            dest="fit_questions",
            help="JSONL questions to fit fusion weights and thresholds on",
        )
        sub.add_argument(
            "--fit-english",
            dest="fit_english",
            help="more English questions to fit only the English thresholds on",
        )
        sub.add_argument("--force", action="store_true", help="rebuild even if up to date")
        if name == "search":
            sub.add_argument("query", nargs="+")
            sub.add_argument("-k", type=int, default=5)
        if name == "eval":
            sub.add_argument("--questions", required=True, help="JSONL questions to evaluate")
            sub.add_argument(
                "--cross-validate",
                action="store_true",
                help="also fit the fusion on 4/5 of the questions and rank the other 1/5",
            )
    args = parser.parse_args(argv)
    if getattr(args, "fit_english", None) and not getattr(args, "fit_questions", None):
        parser.error("--fit-english needs --fit-questions")
    try:
        report, path = _build(args)
        if args.command == "build":
            print(json.dumps(asdict(report), ensure_ascii=False))  # type: ignore[call-overload]
            return 0
        from knowledge_index.search import KnowledgeIndex

        index = KnowledgeIndex.load(path)
        if args.command == "search":
            result = index.search(" ".join(args.query), k=args.k)
            for hit in result.hits:
                print(f"{hit.score:.3f}  {hit.doc_id}  {hit.title}  [{hit.passage.section}]")
            hits = [
                {"id": h.doc_id, "title": h.title, "url": h.url, "score": round(h.score, 4),
                 "section": h.passage.section, "passage": h.passage.text}
                for h in result.hits
            ]  # fmt: skip
            summary = {"band": result.band.value, "confidence": round(result.confidence, 4)}
            print(json.dumps({**summary, "hits": hits}, ensure_ascii=False))
            return 0
        from knowledge_index.build import load_questions
        from knowledge_index.evaluate import evaluate

        questions = load_questions(Path(args.questions))
        metrics = evaluate(index, questions)
        if args.cross_validate:
            from knowledge_index.build import examples_for
            from knowledge_index.params import cross_validate

            metrics.update(cross_validate(examples_for(path, questions)))
        print(json.dumps(metrics))
        return 0
    except (SourceError, BuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(json.dumps({"error": str(exc)}, ensure_ascii=False))
        return 1


if __name__ == "__main__":
    sys.exit(main())
