#!/bin/sh
# One-shot (temporalio/admin-tools): the namespace and the search attributes the journey and plan
# workflows set (journeys/identity.py); what exists already is left as it is.
set -eu
ns=${TEMPORAL_NAMESPACE:-default}
until temporal operator cluster health --address "$TEMPORAL_ADDRESS"; do sleep 2; done
temporal operator namespace describe -n "$ns" --address "$TEMPORAL_ADDRESS" \
  || temporal operator namespace create -n "$ns" --address "$TEMPORAL_ADDRESS"
for attribute in JourneyId:Keyword JourneyVersion:Int ContactId:Keyword Step:Keyword \
                 PlanTemplate:Keyword PlanState:Keyword PlanOwners:KeywordList; do
  name=${attribute%%:*}
  type=${attribute#*:}
  temporal operator search-attribute create --namespace "$ns" --address "$TEMPORAL_ADDRESS" \
    --name "$name" --type "$type" || true  # already registered
done
echo "namespace $ns ready"
