# One image for `journeys worker` and `journeys gateway` (docker-compose.yml runs both from it).
# The project is installed without its dev and embedded extras: no test tools, no bundled
# Temporal binaries; PostgreSQL's driver is in (the `postgres` extra).

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/journeys
COPY pyproject.toml README.md ./
COPY journeys ./journeys
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY starters ./starters
COPY gateway ./gateway
COPY devstack ./devstack
RUN /opt/journeys/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/journeys/bin/pip install --no-cache-dir '.[postgres]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 journeys
COPY --from=build /opt/journeys /opt/journeys
ENV PATH=/opt/journeys/bin:$PATH \
    PYTHONUNBUFFERED=1
USER journeys
WORKDIR /home/journeys
ENTRYPOINT ["journeys"]
CMD ["worker"]
