# The serving image: the ONNX server only (the base install: no torch, no trainer, no exporter).
# Build:  docker build -t recsys-serve:0.1.0 .
#         docker build --build-arg EXTRAS="[tracing]" -t recsys-serve:0.1.0-tracing .
# Run:    docker run -p 50051:50051 -p 9090:9090 -v "$PWD/model-repository:/models:ro" recsys-serve:0.1.0
# See docs/deploy.md. The model repository is a volume at /models; nothing is baked into the image.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Only what the server and the client need: the trainer and exporter never reach the image.
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY server ./server
COPY client ./client
RUN pip install --no-cache-dir "/src${EXTRAS}" \
    && python -c "import server.cli, server.runtime.onnx" \
    && ! python -c "import torch" 2>/dev/null

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 recsys \
    && useradd --system --uid 10001 --gid recsys --no-create-home --shell /usr/sbin/nologin recsys
COPY --from=builder /opt/venv /opt/venv
# Flags can also come as RECSYS_<FLAG> variables (e.g. RECSYS_DRAIN_DELAY_S, RECSYS_PROCESSES).
# In a container the server must accept connections from outside it: 0.0.0.0, set here rather than in
# CMD so that the very same command binds 127.0.0.1 when run locally (tests/deploy run it so).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RECSYS_LISTEN_ALL_INTERFACES=true
VOLUME ["/models"]
USER 10001:10001
# gRPC (recsys.v1 and grpc.health.v1 for the probes) and Prometheus /metrics.
EXPOSE 50051 9090
ENTRYPOINT ["recsys-serve"]
CMD ["--repository", "/models", "--port", "50051", "--metrics-port", "9090"]
