"""Fine-tune the sentence encoder on the catalogue's own words, cached by fingerprint.

The packaged all-MiniLM-L6-v2 is English and places German questions poorly.
The catalogue itself says how citizens name each service (title, keywords) and
what it is about (summary, description sentences): pairs of those with the
service's overview text teach the model German service vocabulary in one and a half to
four minutes on two CPU cores. A contrastive loss with in-batch negatives
(MultipleNegativesRanking) needs no labelled questions, so nothing is tuned to the
evaluation questions. The result is saved under models/ and reused as long as the
training pairs, base model and hyper-parameters are unchanged.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from knowledge_index.chunking import _sentences, overview_text
from knowledge_index.documents import Document, SectionKind

# Generic question shapes, so training anchors look like what citizens type.
_TEMPLATES = (
    "{}",
    "Wie beantrage ich {}?",
    "Ich brauche {}",
    "Wo bekomme ich {}?",
    "Was muss ich tun: {}",
)


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 5e-5
    scale: float = 20.0
    max_sentences_per_doc: int = 8
    # Two consecutive sentences as one anchor: citizens describe a situation in several
    # sentences, and anchors of one sentence left the encoder lost on long questions.
    long_anchors_per_doc: int = 4
    anchor_max_tokens: int = 64
    positive_max_tokens: int = 64
    seed: int = 13


def training_pairs(documents: list[Document], config: FinetuneConfig) -> list[tuple[str, str, str]]:
    """(anchor, positive, doc id) triples from the catalogue's own text."""
    rng = random.Random(config.seed)
    pairs: list[tuple[str, str, str]] = []
    for document in documents:
        positive = overview_text(document)
        names = [document.title, *document.keywords]
        for name in names:
            pairs.append((rng.choice(_TEMPLATES).format(name), positive, document.id))
        sentences = [
            s
            for section in document.sections
            if section.kind not in (SectionKind.OFFICE, SectionKind.FEES)
            for s in _sentences(section.text)
            if len(s.split()) >= 4
        ]
        for sentence in sentences[: config.max_sentences_per_doc]:
            pairs.append((sentence, positive, document.id))
        for first, second in list(itertools.pairwise(sentences))[: config.long_anchors_per_doc]:
            pairs.append((f"{first} {second}", positive, document.id))
        # Keywords also point to the description, so passages learn the service's names.
        if sentences:
            pairs.append((rng.choice(names), f"{document.title}. {sentences[0]}", document.id))
    return pairs


def fingerprint(base_model: Path, pairs: list[tuple[str, str, str]], config: FinetuneConfig) -> str:
    digest = hashlib.sha256()
    digest.update(str(base_model.resolve()).encode())
    digest.update(json.dumps(asdict(config), sort_keys=True).encode())
    for pair in pairs:
        digest.update("\x1f".join(pair).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]


def _batches(pairs: list[tuple[str, str, str]], size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches in which no service appears twice (no false in-batch negatives)."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    pending = order
    while pending:
        batch: list[int] = []
        seen: set[str] = set()
        rest: list[int] = []
        for index in pending:
            doc = pairs[index][2]
            if len(batch) < size and doc not in seen:
                batch.append(index)
                seen.add(doc)
            else:
                rest.append(index)
        if len(batch) < 2:
            break
        batches.append(batch)
        pending = rest
    return batches


def finetuned_model(
    base_model: Path,
    documents: list[Document],
    cache_dir: Path,
    config: FinetuneConfig | None = None,
) -> Path:
    """Path of the encoder fine-tuned on `documents`; trains only if not cached."""
    config = config or FinetuneConfig()
    pairs = training_pairs(documents, config)
    target = cache_dir / f"finetuned-{fingerprint(base_model, pairs, config)}"
    if (target / "modules.json").exists():
        return target
    _train(base_model, pairs, config, target)
    return target


def _train(
    base_model: Path, pairs: list[tuple[str, str, str]], config: FinetuneConfig, target: Path
) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    model = SentenceTransformer(str(base_model), device="cpu")
    model.train()
    # The word embeddings stay frozen: fewer gradients (faster on CPU) and English
    # vocabulary the catalogue never mentions keeps its meaning.
    transformer: Any = model[0]
    for parameter in transformer.auto_model.embeddings.parameters():
        parameter.requires_grad = False
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    batches = [b for _ in range(config.epochs) for b in _batches(pairs, config.batch_size, rng)]
    warmup = max(1, len(batches) // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1 - step / len(batches))
    )

    def embed(texts: list[str], max_tokens: int) -> torch.Tensor:
        model.max_seq_length = max_tokens
        features = model.preprocess(texts)
        output = model(features)["sentence_embedding"]
        return torch.nn.functional.normalize(output, dim=-1)

    for batch in batches:
        anchors = embed([pairs[i][0] for i in batch], config.anchor_max_tokens)
        positives = embed([pairs[i][1] for i in batch], config.positive_max_tokens)
        logits = anchors @ positives.T * config.scale
        labels = torch.arange(len(batch))
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    model.eval()
    model.max_seq_length = 256
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".finetune-", dir=target.parent))
    try:
        model.save(str(staging))
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "modules.json").exists():
            raise
