# The provisioning chain's queue: CreateDeployment enqueues the first step,
# each step enqueues the next under a deterministic task name, ProvisionTask
# receives them with an OIDC token of the tasks service account.

resource "google_cloud_tasks_queue" "provision" {
  project  = var.project_id
  name     = var.tasks_queue
  location = var.region

  rate_limits {
    max_dispatches_per_second = var.tasks_max_dispatches_per_second
    max_concurrent_dispatches = var.tasks_max_concurrent_dispatches
  }

  # A step that fails (non-2xx) is retried with exponential backoff; a task
  # that runs out of attempts is dropped and Reconcile picks the deployment
  # up again (it re-enqueues stuck deployments every few minutes).
  retry_config {
    max_attempts       = var.tasks_max_attempts
    min_backoff        = var.tasks_min_backoff
    max_backoff        = var.tasks_max_backoff
    max_doublings      = 8
    max_retry_duration = "0s" # bounded by max_attempts only
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.api]
}
