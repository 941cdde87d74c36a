# One service account per role, each with only what it needs.
#
#   api        runtime of the public HTTP functions (Service, CreateDeployment,
#              GetDeployment, DeleteDeployment, UpdateDeployment, DeploymentReady)
#   worker     runtime of ProvisionTask, DeploymentChanged and Reconcile
#   tasks      the identity in the OIDC token Cloud Tasks attaches
#              (TASKS_SERVICE_ACCOUNT): may invoke ProvisionTask, nothing else
#   trigger    the Eventarc trigger's identity: may invoke DeploymentChanged
#   scheduler  the Cloud Scheduler job's identity: may invoke Reconcile
#   build      Cloud Build's identity when it builds the functions' images
#              and the inference image
#   gateway    API Gateway's identity: the only invoker of the six API
#              functions (it sends an ID token of this account)
#
# The api and worker runtimes have the same data permissions: every function
# wires the same configuration (config.Load), enqueues steps (CreateDeployment,
# DeleteDeployment, the steps themselves, webhook retries, Reconcile) and
# seals or opens user secrets.

locals {
  service_accounts = {
    api       = "Orchestrator API functions"
    worker    = "Orchestrator task, trigger and reconcile functions"
    tasks     = "Orchestrator Cloud Tasks OIDC identity"
    trigger   = "Orchestrator Eventarc trigger identity"
    scheduler = "Orchestrator Cloud Scheduler identity"
    build     = "Orchestrator function and inference image builds"
    gateway   = "Orchestrator API Gateway"
  }
  runtime_service_accounts = toset(["api", "worker"])
}

resource "google_service_account" "sa" {
  for_each = local.service_accounts

  project      = var.project_id
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = each.value

  depends_on = [google_project_service.api]
}

# Runtimes: Firestore read/write.
resource "google_project_iam_member" "runtime_datastore" {
  for_each = local.runtime_service_accounts

  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.sa[each.value].member
}

# Runtimes: create tasks on the provision queue only.
resource "google_cloud_tasks_queue_iam_member" "runtime_enqueuer" {
  for_each = local.runtime_service_accounts

  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.provision.name
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.sa[each.value].member
}

# Runtimes: attach the tasks account's OIDC token to the tasks they create
# (iam.serviceAccounts.actAs on that one account).
resource "google_service_account_iam_member" "runtime_acts_as_tasks" {
  for_each = local.runtime_service_accounts

  service_account_id = google_service_account.sa["tasks"].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.sa[each.value].member
}

# Runtimes: envelope encryption with the one key.
resource "google_kms_crypto_key_iam_member" "runtime_crypto" {
  for_each = local.runtime_service_accounts

  crypto_key_id = google_kms_crypto_key.secrets.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = google_service_account.sa[each.value].member
}

# Runtimes: read their two secrets.
resource "google_secret_manager_secret_iam_member" "runtime_accessor" {
  for_each = {
    for pair in setproduct(local.runtime_service_accounts, keys(local.secret_env)) :
    "${pair[0]}:${pair[1]}" => { sa = pair[0], env = pair[1] }
  }

  project   = var.project_id
  secret_id = google_secret_manager_secret.config[each.value.env].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.sa[each.value.sa].member
}

# Eventarc: the trigger's account must be allowed to receive events.
resource "google_project_iam_member" "trigger_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.sa["trigger"].member
}

# Builds (the functions' images and the inference image): write logs and
# images, and read the source: ours (the functions' archive, and the
# inference build's upload, staged there by inference.tf) and Google's
# gcf-v2-sources-PROJECT_NUMBER-REGION, where Cloud Run functions copy the
# archive and Cloud Build reads it (hashicorp/terraform-provider-google#20571).
# That bucket exists only once the first function is created, too late for
# a grant on the bucket itself, so it is read through a project grant whose
# condition names it alone: no other bucket of the project is readable.
resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])

  project = var.project_id
  role    = each.value
  member  = google_service_account.sa["build"].member
}

resource "google_storage_bucket_iam_member" "build_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.sa["build"].member
}

locals {
  gcf_sources_bucket = "gcf-v2-sources-${data.google_project.this.number}-${var.region}"
}

resource "google_project_iam_member" "build_gcf_sources" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = google_service_account.sa["build"].member

  condition {
    title       = "gcf-v2-sources only"
    description = "Cloud Build reads the functions' source where Cloud Run functions copied it."
    expression  = "resource.name == \"projects/_/buckets/${local.gcf_sources_bucket}\" || resource.name.startsWith(\"projects/_/buckets/${local.gcf_sources_bucket}/\")"
  }
}

# IAM grants take a while to reach Cloud Build; the provider's builder
# example waits 60 s before creating the functions.
resource "time_sleep" "build_iam" {
  create_duration = "60s"

  depends_on = [
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_source,
    google_project_iam_member.build_gcf_sources,
  ]
}

# Google's service agents for the Firestore trigger. Eventarc creates its
# agent only when first needed, which made a first apply fail; creating
# the identities here (and waiting for them) makes it work the first time.
resource "google_project_service_identity" "agent" {
  provider = google-beta
  for_each = toset(["eventarc.googleapis.com", "pubsub.googleapis.com"])

  project = var.project_id
  service = each.value

  depends_on = [google_project_service.api]
}

resource "google_project_iam_member" "eventarc_agent" {
  project = var.project_id
  role    = "roles/eventarc.serviceAgent"
  member  = "serviceAccount:${google_project_service_identity.agent["eventarc.googleapis.com"].email}"
}

# Eventarc's roles page: a Pub/Sub service agent enabled on or before
# 8 April 2021 needs roles/iam.serviceAccountTokenCreator to mint the
# trigger's OIDC tokens; harmless for a newer one.
resource "google_project_iam_member" "pubsub_token_creator" {
  project = var.project_id
  role    = "roles/iam.serviceAccountTokenCreator"
  member  = "serviceAccount:${google_project_service_identity.agent["pubsub.googleapis.com"].email}"
}

resource "time_sleep" "agents_iam" {
  create_duration = "60s"

  depends_on = [
    google_project_iam_member.eventarc_agent,
    google_project_iam_member.pubsub_token_creator,
    google_project_iam_member.trigger_event_receiver,
  ]
}
