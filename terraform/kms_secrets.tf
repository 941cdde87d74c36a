# Cloud KMS key for the envelope encryption of user secrets (KMS_KEY_URI),
# and the Secret Manager secrets mounted as environment variables.

resource "google_kms_key_ring" "this" {
  project  = var.project_id
  name     = var.kms_key_ring_name
  location = var.region

  # Firestore keeps the data on destroy (firestore_deletion_policy), so the
  # key that opens the sealed secrets in it must stay too: a destroyed key
  # version leaves them unreadable 30 days later. docs/cloud.md, quickstart
  # step 11, says how to really delete everything.
  lifecycle {
    prevent_destroy = true
  }

  depends_on = [google_project_service.api]
}

resource "google_kms_crypto_key" "secrets" {
  name            = "user-secrets"
  key_ring        = google_kms_key_ring.this.id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = "7776000s" # 90 days; old versions stay usable for decryption

  labels = var.labels

  lifecycle {
    prevent_destroy = true # see the key ring
  }
}

locals {
  # Environment variable => Secret Manager secret id. Every function gets
  # these as secret environment variables (version "latest", resolved when an
  # instance starts: redeploy or let instances recycle after a rotation).
  secret_env = {
    API_KEY_HASHES      = "${var.name_prefix}-api-key-hashes"
    WEBHOOK_SIGNING_KEY = "${var.name_prefix}-webhook-signing-key"
  }

  # Values given to Terraform (null: the operator adds the version out of band).
  secret_values = {
    API_KEY_HASHES      = var.api_key_hashes
    WEBHOOK_SIGNING_KEY = var.webhook_signing_key
  }
  managed_secret_versions = toset([for name in keys(local.secret_env) : name if nonsensitive(local.secret_values[name] != null)])
}

resource "google_secret_manager_secret" "config" {
  for_each = local.secret_env

  project   = var.project_id
  secret_id = each.value
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret_version" "config" {
  for_each = local.managed_secret_versions

  secret      = google_secret_manager_secret.config[each.value].id
  secret_data = local.secret_values[each.value]
}
