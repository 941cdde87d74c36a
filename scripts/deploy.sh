#!/usr/bin/env bash
# Deploy the Deployment Orchestrator to Google Cloud with terraform/.
#
#   scripts/deploy.sh                 init + apply (asks for confirmation)
#   scripts/deploy.sh -auto-approve   extra arguments go to `terraform apply`
#
# Needs: gcloud (application-default credentials), terraform >= 1.5, and
# terraform/terraform.tfvars (copy terraform/terraform.tfvars.example), or
# TF_VAR_project_id. Secrets: TF_VAR_api_key_hashes / TF_VAR_webhook_signing_key,
# or secret versions added out of band (docs/cloud.md, "Secrets, URLs and permissions").
set -euo pipefail

cd "$(dirname "$0")/.."
TF_DIR=terraform

die() { echo "deploy: $*" >&2; exit 1; }

command -v terraform >/dev/null || die "terraform is not installed (https://developer.hashicorp.com/terraform/install)"
command -v gcloud >/dev/null || die "gcloud is not installed (https://cloud.google.com/sdk/docs/install)"

# Terraform's google provider uses application-default credentials.
if ! gcloud auth application-default print-access-token >/dev/null 2>&1; then
  die "no application-default credentials: run
    gcloud auth application-default login
and try again"
fi

if [[ ! -f $TF_DIR/terraform.tfvars && -z ${TF_VAR_project_id:-} ]]; then
  die "no $TF_DIR/terraform.tfvars and no TF_VAR_project_id: cp $TF_DIR/terraform.tfvars.example $TF_DIR/terraform.tfvars and edit it"
fi

terraform -chdir="$TF_DIR" init -input=false

# Secrets given neither to Terraform nor out of band would make every
# function fail to start: create the secrets first and say what to add.
tfvar_set() { # NAME: given as TF_VAR_NAME or in terraform.tfvars
  local env="TF_VAR_$1"
  [[ -n ${!env:-} ]] || grep -Eq "^[[:space:]]*$1[[:space:]]*=" "$TF_DIR/terraform.tfvars" 2>/dev/null
}
tf_eval() { terraform -chdir="$TF_DIR" console <<<"$1" | tr -d '"'; }
out_of_band=()
for v in api_key_hashes:API_KEY_HASHES webhook_signing_key:WEBHOOK_SIGNING_KEY; do
  tfvar_set "${v%%:*}" || out_of_band+=("${v#*:}")
done
if ((${#out_of_band[@]})); then
  terraform -chdir="$TF_DIR" apply -input=false -target=google_secret_manager_secret.config "$@"
  project=$(tf_eval 'var.project_id')
  missing=0
  for env in "${out_of_band[@]}"; do
    id=$(tf_eval "local.secret_env[\"$env\"]")
    if ! gcloud secrets versions list "$id" --project="$project" --filter='state=ENABLED' --format='value(name)' --limit=1 | grep -q .; then
      echo "deploy: secret $id ($env) has no enabled version; add one, e.g.:" >&2
      echo "    printf %s 'VALUE' | gcloud secrets versions add $id --project=$project --data-file=-" >&2
      missing=1
    fi
  done
  [[ $missing == 0 ]] || die "add the secret versions above, then run scripts/deploy.sh again"
fi

terraform -chdir="$TF_DIR" apply -input=false "$@"

echo
echo "Deployed. Outputs:"
terraform -chdir="$TF_DIR" output
echo
echo "Base URL of the API: $(terraform -chdir="$TF_DIR" output -raw api_base_url)"
echo "Quick test: BASE=\$(terraform -chdir=$TF_DIR output -raw api_base_url) KEY=<your key> scripts/quick-test.sh"
