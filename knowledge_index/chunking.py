"""Cut documents into quotable chunks along sections and sentences.

spaCy's blank German pipeline with its rule-based sentencizer splits sentences
without a model download; chunks stay within a section so a passage about fees
is never mixed with one about documents.
"""

from __future__ import annotations

from functools import lru_cache

import spacy
from spacy.language import Language

from knowledge_index.documents import Chunk, Document, SectionKind

MAX_CHUNK_WORDS = 60


@lru_cache(maxsize=1)
def sentence_splitter() -> Language:
    nlp = spacy.blank("de")
    nlp.add_pipe("sentencizer")
    return nlp


def overview_text(document: Document) -> str:
    """Title, keywords and summary: what the service is called and what it is for."""
    parts = [document.title]
    if document.keywords:
        parts.append(", ".join(document.keywords))
    if document.summary:
        parts.append(document.summary)
    return ". ".join(parts)


def _sentences(text: str) -> list[str]:
    nlp = sentence_splitter()
    sentences: list[str] = []
    for paragraph in text.split("\n"):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph.split()) <= 12:
            sentences.append(paragraph)
            continue
        sentences.extend(s.text.strip() for s in nlp(paragraph).sents if s.text.strip())
    return sentences


def _pack(sentences: list[str], max_words: int) -> list[str]:
    """Greedily group consecutive sentences into chunks of at most `max_words` words."""
    chunks: list[str] = []
    current: list[str] = []
    words = 0
    for sentence in sentences:
        n = len(sentence.split())
        if current and words + n > max_words:
            chunks.append("\n".join(current))
            current, words = [], 0
        current.append(sentence)
        words += n
    if current:
        chunks.append("\n".join(current))
    return chunks


def chunk_document(document: Document, max_words: int = MAX_CHUNK_WORDS) -> list[Chunk]:
    chunks = [
        Chunk(
            id=f"{document.id}#0",
            doc_id=document.id,
            title=document.title,
            section="Überblick",
            kind=SectionKind.OVERVIEW,
            text=overview_text(document),
        )
    ]
    for section in document.sections:
        for text in _pack(_sentences(section.text), max_words):
            chunks.append(
                Chunk(
                    id=f"{document.id}#{len(chunks)}",
                    doc_id=document.id,
                    title=document.title,
                    section=section.name,
                    kind=section.kind,
                    text=text,
                )
            )
    return chunks


def chunk_documents(documents: list[Document], max_words: int = MAX_CHUNK_WORDS) -> list[Chunk]:
    return [chunk for document in documents for chunk in chunk_document(document, max_words)]
