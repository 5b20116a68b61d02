#!/bin/sh
# One-shot (temporalio/admin-tools): Temporal's two databases with their schemas, and an empty
# database for the journeys store (its tables are created by the worker and gateway on start).
set -eu
tool="temporal-sql-tool --plugin postgres12 --ep postgresql -u ${POSTGRES_USER} -p 5432"
nc -z -w 10 postgresql 5432
for db in temporal temporal_visibility; do
  schema=$([ "$db" = temporal ] && echo temporal || echo visibility)
  $tool --db "$db" create || true  # already there on a second `up`
  $tool --db "$db" setup-schema -v 0.0 || true
  $tool --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"
done
$tool --db journeys create || true
echo 'databases ready'
