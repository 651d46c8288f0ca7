"""`python -m handover`: serve the gateway with the configured host, port and limits."""

from __future__ import annotations

import uvicorn

from handover.app import create_app
from handover.log_config import configure_logging
from handover.settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level,
        # Frames up to 16× the protocol limit get a `too_large` error frame and the
        # socket stays open; only beyond that does the connection close (1009).
        ws_max_size=max(64 * 1024, 16 * settings.max_frame_bytes),
        ws_ping_interval=20,
        ws_ping_timeout=20,
        # Chat frames are small; compressing each costs more CPU than it saves.
        ws_per_message_deflate=False,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
