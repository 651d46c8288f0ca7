"""The city's catalogue as the actions see it: the loaded knowledge index and the city's name.

Below every other action module (knowledge, handover, advisors import it; it imports
none of them), so the index is loaded once per action server process and no import
circle is needed to ask which department a service belongs to.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from handover.settings import get_settings

logger = logging.getLogger(__name__)
_CITY_IN_ADDRESS = re.compile(r"\b\d{5}\s+([A-ZÄÖÜ][\w.\- ]+?)\s*(?:$|[,.(])")


def _load_index() -> Any:
    """The configured index, or None (logged) when it has not been built."""
    from knowledge_index.dense import one_thread_per_query
    from knowledge_index.search import cached_index
    from knowledge_index.store import CURRENT, index_root

    one_thread_per_query()
    settings = get_settings()
    path = index_root(settings.knowledge_dir, settings.knowledge_source) / CURRENT
    if not path.exists():
        logger.error("No knowledge index at %s; run `make knowledge`.", path)
        return None
    try:
        return cached_index(Path(path).resolve())
    except Exception:
        logger.exception("Knowledge index at %s cannot be loaded", path)
        return None


INDEX = _load_index()
# Loading torch/transformers asks multiprocessing for its start method, which fixes
# it to "fork"; Sanic (the action server) then refuses to set its own. Unset it again.
multiprocessing.set_start_method(None, force=True)


def category_of(doc_id: str | None) -> str:
    """The catalogue category of a document ("" when unknown)."""
    if INDEX is None or not doc_id:
        return ""
    document = INDEX.document(str(doc_id))
    return document.category if document is not None else ""


@lru_cache(maxsize=1)
def city_name() -> str:
    """The city citizens are talking to: the setting, else what the catalogue's offices say."""
    configured = get_settings().city_name.strip()
    if configured:
        return configured
    addresses = [office.address for office in getattr(INDEX, "offices", ())]
    cities = Counter(
        match.group(1).strip()
        for address in addresses
        if (match := _CITY_IN_ADDRESS.search(address or "")) is not None
    )
    return cities.most_common(1)[0][0] if cities else ""


def city_phrase() -> str:
    """ "der Stadt München", or "der Stadtverwaltung" when no city is known."""
    name = city_name()
    return f"der Stadt {name}" if name else "der Stadtverwaltung"
