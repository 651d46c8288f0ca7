"""Every way in is an adapter in one registry; the web socket is one of them."""

from __future__ import annotations

from typing import Any

import handover.app  # noqa: F401 (imports every channel, which registers it)
from handover.channels.base import REGISTRY, OutboxChannel, enabled_adapters
from handover.channels.web import WebChannel
from handover.settings import Settings


def test_every_channel_is_registered_by_name() -> None:
    assert set(REGISTRY) == {"web", "telegram", "whatsapp", "messenger", "matrix", "email"}
    assert REGISTRY["web"] is WebChannel


def test_without_their_secrets_only_the_web_socket_is_on_and_the_others_say_why() -> None:
    said: list[tuple[str, dict[str, Any]]] = []
    adapters = enabled_adapters(Settings(), lambda event, **fields: said.append((event, fields)))
    assert [a.name for a in adapters] == ["web"]
    assert not isinstance(adapters[0], OutboxChannel)  # the socket delivers its own frames
    assert "/ws/chat" in adapters[0].sockets()
    off = {fields["channel"]: fields["missing"] for event, fields in said if event == "channel_off"}
    assert off["telegram"] == ["TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET"]
    assert set(off) == set(REGISTRY) - {"web"}


def test_a_channel_with_its_secrets_is_on_and_sends_through_an_outbox() -> None:
    settings = Settings(telegram_bot_token="123:abc", telegram_webhook_secret="s" * 32)
    adapters = {a.name: a for a in enabled_adapters(settings, lambda *_, **__: None)}
    assert set(adapters) == {"web", "telegram"}
    assert isinstance(adapters["telegram"], OutboxChannel)
    assert any(route.path == "/channels/telegram" for route in adapters["telegram"].router().routes)
