#!/usr/bin/env bash
# `make demo`: the churn example end to end, in a fresh copy under .demo/.
# init → snapshot → schema/validate → train → registry views → lineage → reproduce → events
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$here/.demo/churn"
rm -rf "$work"
mkdir -p "$(dirname "$work")"
cp -r "$here/examples/churn" "$work"
rm -rf "$work/.shipyard"
cd "$work"

step() { printf '\n\033[1;36m━━ %s\033[0m\n$ %s\n' "$1" "$2"; }
run() { step "$1" "${*:2}"; "${@:2}"; }

run "1. Create the workspace and database" shipyard init
run "2. Snapshot the training data (content digest, stored copy, profile)" \
    shipyard data snapshot data/train.csv
run "3. Validate the data against the committed schema" \
    shipyard data validate data/train.csv --schema schema.yaml
step "4. A bad batch: every problem is listed in one run (exit code 1 expected)" \
    "shipyard data validate data/bad_batch.csv --schema schema.yaml"
if shipyard data validate data/bad_batch.csv --schema schema.yaml; then
    echo "expected the bad batch to fail validation" >&2
    exit 1
fi
run "5. Train: snapshot → validate → train → log → register → model card" shipyard train
run "6. Train again with a parameter override" shipyard train -p n_estimators=150
run "7. The registry" shipyard models list
run "8. One version" shipyard models show churn/1
run "9. Where churn/1 came from" shipyard models lineage churn/1
run "10. Retrain churn/1 from its record and compare" shipyard reproduce churn/1
run "11. What happened, in the event log" shipyard events --limit 12

printf '\n\033[1;32mDemo finished.\033[0m Workspace: %s (MLflow database .shipyard/shipyard.db, ' "$work"
printf 'artifacts .shipyard/artifacts).\n'
