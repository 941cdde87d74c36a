variable "project_id" {
  description = "Google Cloud project to deploy into (also GCP_PROJECT_ID of every function)."
  type        = string
}

variable "region" {
  description = "Region of the functions, the Cloud Tasks queue, the scheduler job and the KMS key ring (GCP_LOCATION)."
  type        = string
  default     = "europe-west1"
}

variable "firestore_location" {
  description = "Location of the Firestore database: a region (europe-west1) or a multi-region (eur3, nam5). The Eventarc trigger lives in this region, or for nam5 in us-central1 and for eur3 in europe-west4. Cannot be changed after creation."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of every named resource (functions, service accounts, secrets). Keep it short: a function's deterministic URL needs name + project number to fit in 63 characters."
  type        = string
  default     = "orchestrator"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,16}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3 to 18 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "go_runtime" {
  description = "Cloud Run functions runtime id for Go 1.26 (go.mod says go 1.26.0). The id is assumed to be go126: check `gcloud functions runtimes list --region=REGION` and change it if Google names it differently."
  type        = string
  default     = "go126"
}

variable "tasks_queue" {
  description = "Cloud Tasks queue id (TASKS_QUEUE). A deleted queue's name cannot be reused for about 7 days."
  type        = string
  default     = "provision"
}

variable "tasks_max_attempts" {
  description = "Cloud Tasks: attempts per task before it is dropped (Reconcile repairs what is dropped)."
  type        = number
  default     = 20
}

variable "tasks_min_backoff" {
  description = "Cloud Tasks: first retry delay."
  type        = string
  default     = "2s"
}

variable "tasks_max_backoff" {
  description = "Cloud Tasks: longest retry delay."
  type        = string
  default     = "300s"
}

variable "tasks_max_dispatches_per_second" {
  description = "Cloud Tasks: dispatch rate limit of the provision queue."
  type        = number
  default     = 20
}

variable "tasks_max_concurrent_dispatches" {
  description = "Cloud Tasks: tasks in flight at once."
  type        = number
  default     = 50
}

variable "rate_limit_per_minute" {
  description = "RATE_LIMIT_PER_MINUTE: requests a minute per API key."
  type        = number
  default     = 100
}

variable "default_ttl" {
  description = "DEFAULT_TTL: time limit of every deployment whose owner sets none (a Go duration such as 72h; 0s: none). A forgotten endpoint stops costing money then; a deployment meant to live longer must set ttl_seconds or expires_at."
  type        = string
  default     = "0s"

  validation {
    condition     = can(regex("^([0-9]+(h|m|s))+$", var.default_ttl))
    error_message = "default_ttl: a duration such as 72h, 90m or 0s."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of every function: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level: debug, info, warn or error."
  }
}

variable "reconcile_schedule" {
  description = "Cron schedule of the Reconcile job (UTC)."
  type        = string
  default     = "*/5 * * * *"
}

variable "api_key_hashes" {
  description = "API_KEY_HASHES (owner:sha256hex, comma-separated; `make mint-key` prints one). Null: Terraform creates no secret version and you add one out of band (see docs/cloud.md, \"Secrets\"). A value given here is stored in the Terraform state."
  type        = string
  default     = null
  sensitive   = true
}

variable "webhook_signing_key" {
  description = "WEBHOOK_SIGNING_KEY, the master key of the per-owner webhook secrets (e.g. `openssl rand -base64 32`). Null: add the secret version out of band (see docs/cloud.md, \"Secrets\"). A value given here is stored in the Terraform state."
  type        = string
  default     = null
  sensitive   = true
}

variable "kms_key_ring_name" {
  description = "Name of the KMS key ring. Key rings and keys can never be deleted and Terraform keeps them (prevent_destroy): after a teardown, import them again before applying (docs/cloud.md, quickstart step 11)."
  type        = string
  default     = "orchestrator"
}

variable "firestore_delete_protection" {
  description = "Firestore delete protection. Set false (and firestore_deletion_policy = DELETE) and apply before a destroy that should delete the data."
  type        = bool
  default     = true
}

variable "firestore_deletion_policy" {
  description = "ABANDON: `terraform destroy` leaves the Firestore database (and its data) in place. DELETE: destroy deletes it (needs firestore_delete_protection = false)."
  type        = string
  default     = "ABANDON"

  validation {
    condition     = contains(["ABANDON", "DELETE"], var.firestore_deletion_policy)
    error_message = "firestore_deletion_policy: ABANDON or DELETE."
  }
}

variable "firestore_backup_retention_days" {
  description = "Days Firestore backups are kept (1 to 98): the daily backups at most 7 days (Firestore's limit for a daily schedule); above 7, a weekly backup (Sundays) is kept this long (at most 14 weeks, the weekly limit). Point-in-time recovery covers the last 7 days besides."
  type        = number
  default     = 14

  validation {
    condition     = var.firestore_backup_retention_days >= 1 && var.firestore_backup_retention_days <= 98 && floor(var.firestore_backup_retention_days) == var.firestore_backup_retention_days
    error_message = "firestore_backup_retention_days: a whole number of days from 1 to 98 (14 weeks)."
  }
}

variable "max_instances" {
  description = "Per-function overrides of max instances, keyed by function key (service, create_deployment, get_deployment, delete_deployment, update_deployment, deployment_ready, provision_task, deployment_changed, reconcile)."
  type        = map(number)
  default     = {}
}

variable "api_gateway_region" {
  description = "Region of the API Gateway (the default base URL). Null: region. API Gateway runs in fewer regions than Cloud Run: see `gcloud api-gateway locations list`."
  type        = string
  default     = null
}

variable "gateway_forwarded_hops" {
  description = "FORWARDED_HOPS behind API Gateway: how many entries follow the client's address in the X-Forwarded-For the functions receive (failed-auth throttling). 1: the gateway's own address is last. Google documents no layout: check it as docs/cloud.md says (\"Only the gateway is public\") and raise it if the throttle's log names a Google address instead of yours."
  type        = number
  default     = 1

  validation {
    condition     = var.gateway_forwarded_hops >= 0 && var.gateway_forwarded_hops <= 10 && floor(var.gateway_forwarded_hops) == var.gateway_forwarded_hops
    error_message = "gateway_forwarded_hops: a whole number from 0 to 10."
  }
}

variable "enable_load_balancer" {
  description = "Serve the API at https://<domain> from one global external HTTPS load balancer (routes by path and method; fixed hourly cost) instead of API Gateway."
  type        = bool
  default     = false
}

variable "domain" {
  description = "Domain of the load balancer (a Google-managed certificate is issued for it once its DNS A record points at the lb_ip_address output). Required when enable_load_balancer is true."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = { app = "deployment-orchestrator" }
}
