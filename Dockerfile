# One image for every process of a deployment past one host (docs/deploy.md):
#   the webhook receivers       poster-pipeline serve --host 0.0.0.0 --port 8080   (the default)
#   the Dagster code location   dagster api grpc --host 0.0.0.0 --port 4000 --module-name poster_pipeline.definitions
#   runs                        launched by Dagster's run launcher in this image
#   migrations                  poster-pipeline db upgrade
# No secret is baked in: POSTER_TOKEN_KEY, POSTER_API_KEY, POSTER_APPLICATION_SECRET and the
# database URLs come from the environment at run time (Kubernetes secrets).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md LICENSE ./
COPY poster_pipeline ./poster_pipeline
COPY sensors ./sensors
# The `k8s` extra adds dagster-k8s (same release train): run pods load the instance's
# K8sRunLauncher.
RUN /opt/venv/bin/pip install --no-cache-dir ".[k8s]" \
    && /opt/venv/bin/pip check

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 poster \
    && useradd --system --uid 10001 --gid poster --home-dir /opt/poster-pipeline \
       --shell /usr/sbin/nologin poster
COPY --from=build /opt/venv /opt/venv
WORKDIR /opt/poster-pipeline
# workspace.yaml for `dagster-webserver -w` / `dagster-daemon run -w` in the Docker variant;
# DAGSTER_HOME holds the PostgreSQL instance (DAGSTER_PG_URL) and the local compute logs.
COPY --chown=poster:poster workspace.yaml ./
COPY --chown=poster:poster deploy/postgres/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    POSTER_DATA_DIR=/opt/poster-pipeline/data \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN mkdir -p /opt/poster-pipeline/data /opt/dagster/dagster_home/storage \
    && chown -R poster:poster /opt/poster-pipeline /opt/dagster/dagster_home
USER 10001:10001
# 8080: the receiver (`serve`), 4000: the code location's gRPC server, 3000: dagster-webserver.
EXPOSE 8080 4000 3000
CMD ["poster-pipeline", "serve", "--host", "0.0.0.0", "--port", "8080"]
