# The inference worker image (inference/, its Dockerfile): built by Cloud
# Build into an Artifact Registry repository that anyone can pull from,
# because the endpoints run in the users' own RunPod accounts, and given to
# the functions as INFERENCE_IMAGE. The image holds no secret: the build
# context is inference/ alone, the build takes no secret or build argument
# (inference-cloudbuild.yaml), and the worker gets its model id, Hub token
# and callback secret from the endpoint's env at run time.

locals {
  inference_dir = "${path.module}/../inference"

  # The image tag is the hash of the files the build uploads, so a change
  # to inference/ rebuilds and redeploys, and nothing else does.
  inference_files = sort([
    for f in fileset(local.inference_dir, "**") : f
    if length(regexall("(^|/)(\\.venv|__pycache__|\\.pytest_cache|\\.ruff_cache|\\.mypy_cache|build|dist|[^/]+\\.egg-info)/", f)) == 0
  ])
  inference_hash = substr(sha256(join("", [for f in local.inference_files : "${f}:${filesha256("${local.inference_dir}/${f}")};"])), 0, 16)

  inference_repository = "${var.name_prefix}-inference"
  inference_image      = "${var.region}-docker.pkg.dev/${var.project_id}/${local.inference_repository}/worker:${local.inference_hash}"
}

resource "google_artifact_registry_repository" "inference" {
  project       = var.project_id
  location      = var.region
  repository_id = local.inference_repository
  format        = "DOCKER"
  description   = "Inference worker image, public: RunPod pulls it into the users' own accounts"
  labels        = var.labels

  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "7776000s" # 90 days; deployments that run an older image keep it pulled
    }
  }

  depends_on = [google_project_service.api]
}

# Anyone may pull from this repository, and only from this one (the
# functions' images stay private). An organization policy restricting
# allUsers (iam.allowedPolicyMemberDomains) refuses this binding: see docs/cloud.md, "Who may call what".
resource "google_artifact_registry_repository_iam_member" "inference_public" {
  project    = var.project_id
  location   = google_artifact_registry_repository.inference.location
  repository = google_artifact_registry_repository.inference.name
  role       = "roles/artifactregistry.reader"
  member     = "allUsers"
}

# Cloud Build, as the build service account, from the operator's machine
# (`gcloud builds submit` uploads inference/ only, into our source bucket,
# the one the build account may read, rather than PROJECT_cloudbuild). Runs
# again when the hash of inference/ changes.
resource "terraform_data" "inference_image" {
  triggers_replace = [local.inference_image]

  provisioner "local-exec" {
    working_dir = local.inference_dir
    command     = <<-EOT
      gcloud builds submit . \
        --project='${var.project_id}' \
        --region='${var.region}' \
        --config='${abspath(path.module)}/inference-cloudbuild.yaml' \
        --ignore-file='${abspath(path.module)}/inference.gcloudignore' \
        --service-account='${google_service_account.sa["build"].id}' \
        --gcs-source-staging-dir='gs://${google_storage_bucket.source.name}/inference-staging' \
        --substitutions='_IMAGE=${local.inference_image}'
    EOT
  }

  depends_on = [
    google_artifact_registry_repository.inference,
    time_sleep.build_iam,
  ]
}
