#!/usr/bin/env bash
# `make demo`: the churn example end to end, in a fresh copy under .demo/.
# init → snapshot → schema/validate → train → registry views → lineage → reproduce →
# evaluate → promote → approve → verify → rollback → history → events
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$here/.demo/churn"
rm -rf "$work"
mkdir -p "$(dirname "$work")"
cp -r "$here/examples/churn" "$work"
rm -rf "$work/.shipyard"
cd "$work"
# The signing key normally lives in ~/.shipyard/keys/; the demo keeps its own beside the copy.
export SHIPYARD_SIGNING__PRIVATE_KEY="$here/.demo/keys/churn.pem"
rm -rf "$here/.demo/keys"

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
run "11. Create the project's signing key pair" shipyard keys init
run "12. Score churn/1 on the golden set (HTML report with plots)" shipyard evaluate churn/1
step "13. Promotion to champion needs an approval (refusal expected)" \
    "shipyard promote churn/1 --to champion"
if shipyard promote churn/1 --to champion; then
    echo "expected the promotion to be refused without an approval" >&2
    exit 1
fi
run "14. A reviewer approves" env SHIPYARD_USER=reviewer shipyard approve churn/1 \
    --comment "scorecard passed, report reviewed"
run "15. Promote churn/1 to champion (the card is signed)" shipyard promote churn/1 --to champion
run "16. Score churn/2 against the champion" shipyard evaluate churn/2
run "17. churn/2 becomes challenger" shipyard promote churn/2 --to challenger
run "18. Approved, then champion" env SHIPYARD_USER=reviewer shipyard approve churn/2 \
    --comment "no regression against churn/1"
shipyard promote churn/2 --to champion
run "19. Verify the signed card and model artifact" shipyard models verify churn/2
run "20. Roll back to the previous champion" shipyard rollback churn --reason "demo rollback"
run "21. Who moved what, when and why" shipyard models history churn
run "22. What happened, in the event log" shipyard events --limit 15

printf '\n\033[1;32mDemo finished.\033[0m Workspace: %s (MLflow database .shipyard/shipyard.db, ' "$work"
printf 'artifacts .shipyard/artifacts).\n'
