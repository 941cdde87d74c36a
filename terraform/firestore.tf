# Firestore (native mode) and the indexes shared/store/firestore needs
# (shared/store/firestore/INDEXES.md lists each query and its index).

resource "google_firestore_database" "default" {
  project     = var.project_id
  name        = "(default)"
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"

  delete_protection_state = var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = var.firestore_deletion_policy

  # Every version of the last 7 days stays readable: a bad write or delete
  # can be read, exported or cloned as of any minute before it
  # (docs/operations.md, "Backup and recovery (Google Cloud)").
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"

  depends_on = [google_project_service.api]
}

# A backup every day, kept firestore_backup_retention_days but at most 7
# days (Firestore's limit for a daily schedule), and, when the operator keeps
# backups longer, one every Sunday kept the whole firestore_backup_retention_days
# (at most 14 weeks, the weekly limit). Restored into a new database
# (docs/operations.md, "Backup and recovery (Google Cloud)"). Backups outlive
# the database and the schedule; the KMS key that opens the sealed secrets in
# them is never destroyed (kms_secrets.tf).
resource "google_firestore_backup_schedule" "daily" {
  project   = var.project_id
  database  = google_firestore_database.default.name
  retention = "${min(var.firestore_backup_retention_days, 7) * 86400}s"

  daily_recurrence {}
}

resource "google_firestore_backup_schedule" "weekly" {
  count = var.firestore_backup_retention_days > 7 ? 1 : 0

  project   = var.project_id
  database  = google_firestore_database.default.name
  retention = "${var.firestore_backup_retention_days * 86400}s"

  weekly_recurrence {
    day = "SUNDAY"
  }
}

locals {
  # List without ChangedBefore orders by created_at DESC (the API lists by
  # owner); with ChangedBefore it filters status_changed_at < t (the
  # reconciler). __name__ is appended by Firestore.
  deployment_indexes = {
    owner_created        = [["owner", "ASCENDING"], ["created_at", "DESCENDING"]]
    status_created       = [["status", "ASCENDING"], ["created_at", "DESCENDING"]]
    owner_status_created = [["owner", "ASCENDING"], ["status", "ASCENDING"], ["created_at", "DESCENDING"]]
    status_changed       = [["status", "ASCENDING"], ["status_changed_at", "ASCENDING"]]
    owner_changed        = [["owner", "ASCENDING"], ["status_changed_at", "ASCENDING"]]
    owner_status_changed = [["owner", "ASCENDING"], ["status", "ASCENDING"], ["status_changed_at", "ASCENDING"]]
  }

  # Large or never-queried fields: no single-field index (cheaper writes,
  # and the 200-entry log stays far from the index-entry limit).
  unindexed_deployment_fields = toset(["logs", "runpod_key", "hf_token", "callback_secret", "webhook", "watch"])
}

resource "google_firestore_index" "deployments" {
  for_each = local.deployment_indexes

  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "deployments"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

resource "google_firestore_field" "deployments_unindexed" {
  for_each = local.unindexed_deployment_fields

  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "deployments"
  field      = each.value

  # An empty index_config removes the automatic single-field indexes.
  index_config {}
}

# Expired idempotency claims are deleted by Firestore (the store never relies
# on it: an expired claim is replaced when its key is used again).
resource "google_firestore_field" "idempotency_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "idempotency"
  field      = "expires_at"

  ttl_config {}
}

# Rate-limit counters (shared/ratelimit/firestorelimit): one document per API
# key and minute; Firestore deletes them after expires_at. No index is needed.
resource "google_firestore_field" "ratelimits_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "ratelimits"
  field      = "expires_at"

  ttl_config {}
  index_config {}
}
