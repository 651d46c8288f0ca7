# The app environment (Python 3.11): the gateway and the action server, one image.
#   podman build -f deploy/containers/Containerfile.app -t buergerservice-app .
# Run as the gateway:        python -m handover
# Run as an action server:   python -m actions.server --actions actions --port 5055
FROM docker.io/library/python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends npm openthesaurus-de-text make \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /opt/buergerservice buergerservice
WORKDIR /opt/buergerservice
COPY --chown=buergerservice:buergerservice . .
USER buergerservice
# The app environment, the co-browsing scripts and the knowledge index, built into the image.
RUN make venv cobrowse knowledge PYTHON=/usr/local/bin/python3.11
ENV DATA_DIR=/var/lib/buergerservice GATEWAY_HOST=0.0.0.0 SANIC_HOST=0.0.0.0
EXPOSE 8000 5055
CMD [".venv/bin/python", "-m", "handover"]
