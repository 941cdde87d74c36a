# One base URL for the whole API by default: API Gateway, billed per call
# with no fixed cost (docs/cloud.md, "What costs money"), in front of the six
# API functions, which only the gateway's service account may invoke. Its
# routing document, gateway-openapi.json.tftpl, is
# generated from api.Routes() by scripts/gatewayspec (`make gateway-spec`);
# a test fails when the committed file drifts from the code. With the load
# balancer (lb.tf) the API functions take traffic only from it, so there
# is no gateway.
#
# API Gateway resources are in the google-beta provider only.

locals {
  gateway_count = var.enable_load_balancer ? 0 : 1

  # templatefile variable: entry point => the URL of the function serving
  # it (the deterministic run.app URL, so the gateway does not wait for the
  # functions and the functions can take the gateway's hostname).
  gateway_backends = {
    for k, f in local.functions : f.entry_point => local.run_urls[k] if contains(f.invokers, "public")
  }

  gateway_region = coalesce(var.api_gateway_region, var.region)
}

resource "google_api_gateway_api" "api" {
  provider = google-beta
  count    = local.gateway_count

  project = var.project_id
  api_id  = "${var.name_prefix}-api"
  labels  = var.labels

  depends_on = [google_project_service.api]
}

resource "google_api_gateway_api_config" "api" {
  provider = google-beta
  count    = local.gateway_count

  project              = var.project_id
  api                  = google_api_gateway_api.api[0].api_id
  api_config_id_prefix = "${var.name_prefix}-"
  labels               = var.labels

  openapi_documents {
    document {
      path     = "openapi.json"
      contents = base64encode(templatefile("${path.module}/gateway-openapi.json.tftpl", { backend = local.gateway_backends }))
    }
  }

  # The gateway's own identity, the only one allowed to invoke the API
  # functions (roles/run.invoker, functions.tf). For each request the
  # gateway mints a Google ID token of this account for the function's URL
  # (jwt_audience in the routing document), puts it in Authorization and
  # moves the client's Authorization header (the API key) to
  # X-Forwarded-Authorization, where the functions read it (BEHIND_GATEWAY).
  gateway_config {
    backend_config {
      google_service_account = google_service_account.sa["gateway"].email
    }
  }

  # A config is immutable: a new routing document makes a new config, and
  # the gateway moves to it before the old one is deleted.
  lifecycle {
    create_before_destroy = true
  }
}

resource "google_api_gateway_gateway" "api" {
  provider = google-beta
  count    = local.gateway_count

  project    = var.project_id
  region     = local.gateway_region
  gateway_id = "${var.name_prefix}-api"
  api_config = google_api_gateway_api_config.api[0].id
  labels     = var.labels
}
