# The nine Cloud Run functions (gen2), one per entry point registered in
# functions.go, all built from the same source archive of the repository.

locals {
  # key => entry point and sizing. invokers: who may invoke it (Cloud Run
  # IAM, roles/run.invoker). "public" is the API, reached only through the
  # base URL: API Gateway's service account invokes it (the gateway mints
  # the ID token), or with the load balancer allUsers (a serverless NEG
  # sends no token; ingress then admits the load balancer alone). The API
  # authenticates callers itself, with API keys or the per-deployment
  # callback secret.
  functions = {
    service = {
      entry_point = "Service"
      description = "GET /, /health, /readiness, /openapi.json, /docs, /redoc, /v1/models, /v1/gpus"
      runtime_sa  = "api"
      invokers    = ["public"]
      memory      = "256Mi"
      cpu         = "1"
      concurrency = 80
      timeout     = 30
      max         = 10
    }
    create_deployment = {
      entry_point = "CreateDeployment"
      description = "POST /v1/deployments"
      runtime_sa  = "api"
      invokers    = ["public"]
      memory      = "256Mi"
      cpu         = "1"
      concurrency = 80
      timeout     = 60
      max         = 10
    }
    get_deployment = {
      entry_point = "GetDeployment"
      description = "GET /v1/deployments, /v1/deployments/{id}, /v1/webhook-secret"
      runtime_sa  = "api"
      invokers    = ["public"]
      memory      = "256Mi"
      cpu         = "1"
      concurrency = 80
      timeout     = 30
      max         = 10
    }
    delete_deployment = {
      entry_point = "DeleteDeployment"
      description = "DELETE /v1/deployments/{id}"
      runtime_sa  = "api"
      invokers    = ["public"]
      memory      = "256Mi"
      cpu         = "1"
      concurrency = 80
      timeout     = 60
      max         = 10
    }
    update_deployment = {
      entry_point = "UpdateDeployment"
      description = "PATCH /v1/deployments/{id} (limits and scaling)"
      runtime_sa  = "api"
      invokers    = ["public"]
      memory      = "256Mi"
      cpu         = "1"
      concurrency = 80
      timeout     = 30
      max         = 10
    }
    deployment_ready = {
      entry_point = "DeploymentReady"
      description = "POST /internal/deployment-ready/{id} (inference containers; per-deployment secret)"
      runtime_sa  = "api"
      invokers    = ["public"]
      memory      = "256Mi"
      cpu         = "1"
      concurrency = 80
      timeout     = 60
      max         = 10
    }
    provision_task = {
      entry_point = "ProvisionTask"
      description = "Cloud Tasks target: one provisioning step per task"
      runtime_sa  = "worker"
      invokers    = ["tasks"]
      memory      = "512Mi"
      cpu         = "1"
      concurrency = 20
      timeout     = 300
      max         = 20
    }
    deployment_changed = {
      entry_point = "DeploymentChanged"
      description = "Eventarc: Firestore deployments/{id} written; delivers webhooks"
      runtime_sa  = "worker"
      invokers    = ["trigger"]
      memory      = "256Mi"
      cpu         = "1"
      concurrency = 20
      timeout     = 120
      max         = 10
    }
    reconcile = {
      entry_point = "Reconcile"
      description = "Cloud Scheduler: repairs stuck deployments and orphaned endpoints"
      runtime_sa  = "worker"
      invokers    = ["scheduler"]
      memory      = "512Mi"
      cpu         = "1"
      concurrency = 1
      timeout     = 540
      max         = 1
    }
  }

  function_names = { for k, f in local.functions : k => "${var.name_prefix}-${replace(k, "_", "-")}" }

  # Cloud Run's deterministic URL (https://SERVICE-PROJECT_NUMBER.REGION.run.app)
  # is known before the service exists. The functions use it for each other:
  # every function needs PROVISION_TASK_URL (all of them enqueue, ProvisionTask
  # too) and PUBLIC_BASE_URL, so the function's own `url` attribute would make
  # a dependency cycle. The check "deterministic_urls" below confirms it.
  run_urls = { for k, name in local.function_names : k => "https://${name}-${data.google_project.this.number}.${var.region}.run.app" }

  # The one base URL of the whole API (clients, and inference containers
  # calling PUBLIC_BASE_URL/internal/deployment-ready/{id}): the load
  # balancer when enabled, else API Gateway (gateway.tf).
  public_base_url = var.enable_load_balancer ? "https://${var.domain}" : "https://${google_api_gateway_gateway.api[0].default_hostname}"

  # Plain environment of every function (shared/config.Vars with Cloud=true,
  # plus LOG_LEVEL); API_KEY_HASHES and WEBHOOK_SIGNING_KEY come from Secret
  # Manager (local.secret_env). functions_terraform_test.go checks both
  # against config.Vars.
  function_env = {
    BACKEND               = "gcp"
    GCP_PROJECT_ID        = var.project_id
    GCP_LOCATION          = var.region
    TASKS_QUEUE           = google_cloud_tasks_queue.provision.name
    PROVISION_TASK_URL    = local.run_urls["provision_task"]
    TASKS_SERVICE_ACCOUNT = google_service_account.sa["tasks"].email
    KMS_KEY_URI           = "gcp-kms://${google_kms_crypto_key.secrets.id}"
    PUBLIC_BASE_URL       = local.public_base_url
    RATE_LIMIT_PER_MINUTE = tostring(var.rate_limit_per_minute)
    DEFAULT_TTL           = var.default_ttl
    # Where the client's address is in X-Forwarded-For (failed-auth
    # throttling): the entry before the load balancer's own, or before the
    # gateway's (gateway_forwarded_hops; the functions take requests from
    # the gateway alone, so no caller writes the entries on its right).
    FORWARDED_HOPS = var.enable_load_balancer ? "1" : tostring(var.gateway_forwarded_hops)
    # Behind API Gateway, Authorization holds the gateway's ID token and the
    # caller's key arrives in X-Forwarded-Authorization.
    BEHIND_GATEWAY = var.enable_load_balancer ? "0" : "1"
    LOG_LEVEL      = var.log_level
    # The inference worker image terraform builds (inference.tf): the
    # endpoints of every family but text generation run it.
    INFERENCE_IMAGE = local.inference_image
  }

  invoker_members = {
    public    = var.enable_load_balancer ? "allUsers" : google_service_account.sa["gateway"].member
    tasks     = google_service_account.sa["tasks"].member
    trigger   = google_service_account.sa["trigger"].member
    scheduler = google_service_account.sa["scheduler"].member
  }
  invoker_bindings = merge([
    for k, f in local.functions : {
      for who in f.invokers : "${k}:${who}" => { function = k, invoker = who }
    }
  ]...)
}

# Source: the repository root, minus everything the functions' build does
# not compile, so that a documentation, script, test or terraform edit does not
# redeploy all nine functions. Glob patterns (archive provider >= 2.5,
# doublestar syntax) are matched against paths relative to the repository
# root; a matching directory is skipped whole. functions_source_test.go
# checks that every file `go list -deps .` needs stays in and that tests,
# docs and scripts stay out.
locals {
  source_excludes = [
    ".git", ".ci", ".data", ".emulators", ".build", "artifacts", "bin",
    "inference", "scripts", "terraform", "tools",
    "functions/dev", "functions/local",
    "Makefile", "**/*.md", "**/*_test.go", "**/testdata", "**/.gitignore",
  ]
}

data "archive_file" "source" {
  type        = "zip"
  source_dir  = "${path.module}/.."
  output_path = "${path.module}/.build/source.zip"
  excludes    = local.source_excludes
}

resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = var.labels

  # A new archive replaces the old object (its name carries the content
  # hash); without this, Cloud Storage's default soft delete would keep
  # (and bill) every replaced archive for 7 days. The functions' build
  # copies the archive, so nothing reads an old one.
  soft_delete_policy {
    retention_duration_seconds = 0
  }

  depends_on = [google_project_service.api]
}

# The functions' built images, in a repository of ours (instead of the
# default gcf-artifacts, which keeps every image of every deploy) with a
# cleanup policy. Private: only Cloud Run pulls them.
resource "google_artifact_registry_repository" "functions" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  format        = "DOCKER"
  description   = "Images of the orchestrator's functions (built by Cloud Run functions)"
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
      older_than = "2592000s" # 30 days (the recent ones are kept above)
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_storage_bucket_object" "source" {
  # The content hash in the name makes every change redeploy the functions.
  name   = "source-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

resource "google_cloudfunctions2_function" "fn" {
  for_each = local.functions

  project     = var.project_id
  location    = var.region
  name        = local.function_names[each.key]
  description = each.value.description
  labels      = var.labels

  build_config {
    runtime           = var.go_runtime
    entry_point       = each.value.entry_point
    service_account   = google_service_account.sa["build"].id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.sa[each.value.runtime_sa].email
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    max_instance_request_concurrency = each.value.concurrency
    timeout_seconds                  = each.value.timeout
    min_instance_count               = 0
    max_instance_count               = lookup(var.max_instances, each.key, each.value.max)
    all_traffic_on_latest_revision   = true

    # Behind the load balancer the public functions take traffic only from
    # it; the others must stay reachable by Cloud Tasks, Eventarc and Cloud
    # Scheduler, and IAM (roles/run.invoker) guards them.
    ingress_settings = var.enable_load_balancer && contains(each.value.invokers, "public") ? "ALLOW_INTERNAL_AND_GCLB" : "ALLOW_ALL"

    environment_variables = local.function_env

    dynamic "secret_environment_variables" {
      for_each = local.secret_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.config[secret_environment_variables.key].secret_id
        version    = "latest"
      }
    }
  }

  depends_on = [
    google_project_service.api,
    time_sleep.build_iam, # the build account's roles, propagated
    terraform_data.inference_image,
    google_secret_manager_secret_iam_member.runtime_accessor,
    google_secret_manager_secret_version.config,
  ]
}

# Who may invoke which function. The API functions: the gateway's account
# (or, with the load balancer, allUsers); the others: their one caller.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.invoker_bindings

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn[each.value.function].name
  role     = "roles/run.invoker"
  member   = local.invoker_members[each.value.invoker]
}

# Each function's Cloud Run service, for its list of URLs: a service
# answers at several (the deterministic https://NAME-PROJECT_NUMBER.REGION.run.app
# and a hash URL), and service_config[0].uri may be either. Read after the
# functions change (depends_on), so the first plan does not look for
# services that do not exist yet.
data "google_cloud_run_v2_service" "fn" {
  for_each = local.functions

  project  = var.project_id
  location = var.region
  name     = local.function_names[each.key]

  depends_on = [google_cloudfunctions2_function.fn]
}

check "deterministic_urls" {
  assert {
    condition = alltrue([
      for k, svc in data.google_cloud_run_v2_service.fn : contains(svc.urls, local.run_urls[k])
    ])
    error_message = "A function does not answer at its deterministic Cloud Run URL (https://NAME-PROJECT_NUMBER.REGION.run.app) that PROVISION_TASK_URL, the scheduler and the gateway use; make name_prefix shorter."
  }
}

locals {
  # Eventarc takes no multi-region as a Firestore trigger location; Google's
  # Firestore + Eventarc page maps nam5 to us-central1 and eur3 to
  # europe-west4. A regional database's trigger lives in its region.
  eventarc_location = lookup({ nam5 = "us-central1", eur3 = "europe-west4" }, var.firestore_location, var.firestore_location)
}

# DeploymentChanged: every write of deployments/{id}, as a protobuf
# DocumentEventData CloudEvent (functions/notify decodes it). A standalone
# trigger (rather than the function's event_trigger block) sets the content
# type explicitly. It lives where Eventarc serves the database's location;
# the destination may be in another region.
resource "google_eventarc_trigger" "deployment_changed" {
  project                 = var.project_id
  name                    = "${var.name_prefix}-deployment-changed"
  location                = local.eventarc_location
  service_account         = google_service_account.sa["trigger"].email
  event_data_content_type = "application/protobuf"
  labels                  = var.labels

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.firestore.document.v1.written"
  }
  matching_criteria {
    attribute = "database"
    value     = google_firestore_database.default.name
  }
  matching_criteria {
    attribute = "document"
    value     = "deployments/{id}"
    operator  = "match-path-pattern"
  }

  destination {
    cloud_run_service {
      service = google_cloudfunctions2_function.fn["deployment_changed"].name
      region  = var.region
    }
  }

  depends_on = [
    time_sleep.agents_iam,
    google_cloud_run_v2_service_iam_member.invoker,
  ]
}

# Reconcile every five minutes, with an OIDC token of the scheduler account.
resource "google_cloud_scheduler_job" "reconcile" {
  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-reconcile"
  description      = "Repair stuck deployments and delete orphaned RunPod endpoints"
  schedule         = var.reconcile_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "${local.functions.reconcile.timeout}s"

  retry_config {
    retry_count = 0 # the next run comes in a few minutes
  }

  http_target {
    http_method = "POST"
    uri         = local.run_urls["reconcile"]

    oidc_token {
      service_account_email = google_service_account.sa["scheduler"].email
      audience              = local.run_urls["reconcile"]
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invoker]
}
