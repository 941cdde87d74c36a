terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    # API Gateway and google_project_service_identity are in the beta
    # provider only.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.0"
    }
    # 2.5.0 added glob patterns to archive_file's excludes
    # (hashicorp/terraform-provider-archive#354).
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.5.0, < 3.0.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
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
