# The Deployment Orchestrator in one Google Cloud project: eight Cloud Run
# functions (gen2) built from this repository, Firestore, the Cloud Tasks
# queue of the provisioning chain, the Eventarc trigger on deployments, the
# Reconcile schedule, one service account per role, the secrets and the KMS
# key. See README.md, "Deploy to Google Cloud".

data "google_project" "this" {
  project_id = var.project_id

  depends_on = [google_project_service.api]
}

locals {
  apis = toset(concat([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudkms.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
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
