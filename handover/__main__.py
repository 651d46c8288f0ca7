"""`python -m handover`: serve the gateway with the configured host, port and limits."""

from __future__ import annotations

import resource
from typing import Any

import uvicorn

from handover.app import create_app
from handover.ops.log_config import configure_logging
from handover.settings import Settings, get_settings


def _allow_many_sockets() -> None:
    """Raise the open-file limit to the hard limit: every socket is a file descriptor,
    and the common soft default (1024) would cap the gateway far below its capacity."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proxy_options(settings: Settings) -> dict[str, Any]:
    """Uvicorn's proxy-header options from TRUSTED_PROXIES.

    Uvicorn's default trusts X-Forwarded-For from 127.0.0.1, so anything on the
    gateway's host could claim any client address and dodge every per-address
    limit. Only configured proxies are believed; with none, the ASGI client is
    always the connecting peer.
    """
    proxies = settings.trusted_proxy_list
    if not proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": []}
    return {"proxy_headers": True, "forwarded_allow_ips": proxies}


def main() -> None:
    _allow_many_sockets()
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level,
        # Frames up to 16× the protocol limit (twice a co-browse page's) get a `too_large`
        # error frame and the socket stays open; only beyond that does it close (1009).
        ws_max_size=max(
            64 * 1024, 16 * settings.max_frame_bytes, 2 * settings.cobrowse_max_frame_bytes
        ),
        ws_ping_interval=20,
        ws_ping_timeout=20,
        # Chat frames are small; compressing each costs more CPU than it saves.
        ws_per_message_deflate=False,
        access_log=False,
        **proxy_options(settings),
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
