# The Deployment Orchestrator in one Google Cloud project: nine Cloud Run
# functions (gen2) built from this repository, Firestore, the Cloud Tasks
# queue of the provisioning chain, the Eventarc trigger on deployments, the
# Reconcile schedule, one service account per role, the secrets and the KMS
# key, one base URL (API Gateway, or the optional load balancer) and the
# inference worker image. See docs/cloud.md.

# The project number makes the functions' deterministic URLs (functions.tf)
# and names Google's service agents. It waits for the Resource Manager API
# only: with depends_on on the whole API list, adding an API to the list
# would defer this read to apply time, make every function's environment
# unknown in the plan and redeploy all of them.
data "google_project" "this" {
  project_id = var.project_id

  depends_on = [google_project_service.resourcemanager]
}

resource "google_project_service" "resourcemanager" {
  project            = var.project_id
  service            = "cloudresourcemanager.googleapis.com"
  disable_on_destroy = false
}

locals {
  apis = toset(concat([
    "apigateway.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudkms.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicecontrol.googleapis.com",    # API Gateway
    "servicemanagement.googleapis.com", # API Gateway
    "storage.googleapis.com",
  ], var.enable_load_balancer ? ["compute.googleapis.com"] : []))
}

resource "google_project_service" "api" {
  for_each = local.apis

  project = var.project_id
  service = each.value

  # Other workloads in the project may use these APIs: never turn them off
  # on destroy.
  disable_on_destroy = false
}
