terraform {
  required_version = ">= 1.5"

  required_providers {
    # Exact versions: the ones `make test` validates and plans with
    # (scripts/terraform-providers.sh builds the same). `urls` on
    # google_cloud_run_v2_service, which the URL check reads, needs 6.12.0 or
    # newer; a range would let init pick a version nothing tested.
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
    # API Gateway and google_project_service_identity are in the beta
    # provider only.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "6.50.0"
    }
    # archive_file's excludes take glob patterns from 2.5.0 on
    # (hashicorp/terraform-provider-archive#354).
    archive = {
      source  = "hashicorp/archive"
      version = "2.8.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "0.14.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}
