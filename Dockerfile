# One image for the Dagster services of docker-compose.yml: the code server (user_code), the
# webserver, the daemon and the metrics endpoint. Build from the repository root.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    PODCAST_DATA_DIR=/opt/dagster/data \
    PODCAST_DBT_PROJECT_DIR=/opt/dagster/app/dbt_project \
    PODCAST_USER_AGENT_STORE_DIR=/opt/dagster/user_agents

WORKDIR /opt/dagster/app

# The project and its dependencies (dagster, dagster-webserver, dagster-postgres, dbt, ...), with
# the scale-out extras: dagster-docker (the run launcher of docker-compose) and dagster-k8s (the
# Helm chart's run pods and the optional `k8s_job_executor`). `--build-arg PODCAST_EXTRAS=docker`
# leaves the Kubernetes client out.
ARG PODCAST_EXTRAS=docker,k8s
COPY pyproject.toml README.md ./
COPY pipelines/ pipelines/
COPY assets/ assets/
COPY resources/ resources/
COPY simulator/ simulator/
COPY dbt_project/ dbt_project/
RUN pip install ".[${PODCAST_EXTRAS}]"

# OPAWG's user-agent patterns (github.com/opawg/user-agents-v2), validated and stored with their
# commit in the image, outside the data volume (a volume would hide a newer image's copy). The
# build fails if they cannot be downloaded or are invalid; without them the platform would count
# most bots as listeners. The layer is cached: `--build-arg OPAWG_REFRESH=$(date +%F)` fetches
# the newest list; `podcast-analytics user-agents update` in a running container refreshes its copy.
ARG OPAWG_REFRESH=""
RUN echo "OPAWG refresh: ${OPAWG_REFRESH:-cached}" && podcast-analytics user-agents update

# Instance config (queued runs, each in its own container: the compose deployment's) and the
# compose workspace; the code itself parses the dbt manifest when it is missing, so no
# `dbt parse` step is needed here. The Helm chart mounts its own instance over this file.
COPY deploy/dagster.docker.yaml ${DAGSTER_HOME}/dagster.yaml
COPY deploy/workspace.docker.yaml deploy/workspace.docker.yaml
# The metrics service times the shipped dashboards' SQL (analytics_query_latency_seconds).
COPY deploy/grafana/dashboards/ deploy/grafana/dashboards/

# Run unprivileged; dbt writes target/ and logs/ inside the project folder.
RUN useradd --system --uid 10001 --home-dir /opt/dagster --shell /usr/sbin/nologin dagster \
    && mkdir -p "${PODCAST_DATA_DIR}" "${DAGSTER_HOME}/storage" \
    && chown -R dagster:dagster /opt/dagster
USER dagster

EXPOSE 3000 4000

CMD ["dagster", "code-server", "start", "-m", "pipelines.definitions", "-d", "/opt/dagster/app", \
     "-h", "0.0.0.0", "-p", "4000", "--location-name", "podcast_analytics"]
