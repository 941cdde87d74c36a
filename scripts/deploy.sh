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

tf_eval() { terraform -chdir="$TF_DIR" console <<<"$1" | tr -d '"'; }
project=$(tf_eval 'var.project_id')
region=$(tf_eval 'var.region')
go_runtime=$(tf_eval 'var.go_runtime')

# Before anything is applied: would Google refuse what this configuration
# needs? Both checks read the project through APIs that may still be off on
# a new project; Terraform enables them anyway (never disabled on destroy).
gcloud services enable cloudresourcemanager.googleapis.com cloudfunctions.googleapis.com --project="$project" >/dev/null ||
  die "could not enable the Resource Manager and Cloud Functions APIs of $project (see gcloud's message above)"

# 1. The Go runtime (go.mod's Go version) is offered in the region.
runtimes=$(gcloud functions runtimes list --region="$region" --project="$project" --format='value(name)') ||
  die "could not list the Cloud Run functions runtimes of $region (gcloud functions runtimes list --region=$region)"
grep -qx "$go_runtime" <<<"$runtimes" ||
  die "Cloud Run functions offers no runtime $go_runtime in $region, and the functions need it (go.mod's Go version; go_runtime in $TF_DIR/variables.tf): set go_runtime to the Go runtime that \`gcloud functions runtimes list --region=$region\` lists for this Go version, or deploy to a region that offers it. Go runtimes listed: $(grep '^go' <<<"$runtimes" | tr '\n' ' ')"

# 2. The organisation lets the inference image be public. RunPod pulls it
# into the users' own accounts, so its repository grants allUsers
# roles/artifactregistry.reader; domain-restricted sharing
# (iam.allowedPolicyMemberDomains) refuses that binding halfway through the
# apply. The functions themselves grant no allUsers (only the gateway's
# account invokes them).
if policy=$(gcloud resource-manager org-policies describe iam.allowedPolicyMemberDomains \
  --project="$project" --effective --format=json 2>/dev/null); then
  if grep -Eq '"allowedValues"|"allValues": *"DENY"' <<<"$policy"; then
    die "the organisation policy iam.allowedPolicyMemberDomains (domain-restricted sharing) applies to $project, so Google would refuse the allUsers read access that the inference image's repository needs (RunPod pulls the image into your users' accounts). Ask your organisation administrator to exempt this project from the constraint (a project-level policy that allows all values), or see docs/cloud.md, \"Only the gateway is public\", for the other ways to serve the image."
  fi
else
  echo "deploy: could not read the organisation policy iam.allowedPolicyMemberDomains of $project (no permission to read organisation policies?); if domain-restricted sharing applies, the apply stops at google_artifact_registry_repository_iam_member.inference_public (docs/cloud.md, \"Only the gateway is public\")" >&2
fi

# Its managed successor, iam.managed.allowedPolicyMembers (Organization
# Policy API v2), lists the principals allowed: unless allUsers is among
# them, the same binding is refused.
if policy=$(gcloud org-policies describe iam.managed.allowedPolicyMembers \
  --project="$project" --effective --format=json 2>/dev/null) &&
  grep -Eq '"enforce": *true' <<<"$policy" && ! grep -q '"allUsers"' <<<"$policy"; then
  die "the organisation policy iam.managed.allowedPolicyMembers is enforced on $project and does not allow allUsers, so Google would refuse the allUsers read access that the inference image's repository needs (RunPod pulls the image into your users' accounts). Ask your organisation administrator to add allUsers to the allowed principals for this project, or see docs/cloud.md, \"Only the gateway is public\", for the other ways to serve the image."
fi

# Secrets given neither to Terraform nor out of band would make every
# function fail to start: create the secrets first and say what to add.
tfvar_set() { # NAME: given as TF_VAR_NAME or in terraform.tfvars
  local env="TF_VAR_$1"
  [[ -n ${!env:-} ]] || grep -Eq "^[[:space:]]*$1[[:space:]]*=" "$TF_DIR/terraform.tfvars" 2>/dev/null
}
out_of_band=()
for v in api_key_hashes:API_KEY_HASHES webhook_signing_key:WEBHOOK_SIGNING_KEY; do
  tfvar_set "${v%%:*}" || out_of_band+=("${v#*:}")
done
if ((${#out_of_band[@]})); then
  terraform -chdir="$TF_DIR" apply -input=false -target=google_secret_manager_secret.config "$@"
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
