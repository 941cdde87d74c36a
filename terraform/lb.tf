# Optional (enable_load_balancer): one global external Application Load
# Balancer at https://<domain> in front of the public functions, instead of
# API Gateway (gateway.tf): a custom domain and Google Cloud Armor, for a
# fixed cost (docs/cloud.md, "What costs money").
#
# Path matching alone cannot tell POST /v1/deployments (CreateDeployment)
# from GET /v1/deployments (GetDeployment), nor GET from DELETE on
# /v1/deployments/{id}. URL map route rules can: a header match on the
# pseudo-header ":method" matches the request method (EXTERNAL_MANAGED load
# balancers). TestLoadBalancerRoutesMatchTheAPI checks these rules against
# api.Routes().

locals {
  lb_count = var.enable_load_balancer ? 1 : 0
  lb_functions = {
    for k, f in local.functions : k => f if var.enable_load_balancer && contains(f.invokers, "public")
  }

  # Route rules, first match wins (priority order). method = null: any method.
  lb_routes = [
    { priority = 10, function = "create_deployment", method = "POST", full = "/v1/deployments", prefix = null },
    { priority = 20, function = "get_deployment", method = "GET", full = "/v1/deployments", prefix = null },
    { priority = 30, function = "get_deployment", method = "GET", full = null, prefix = "/v1/deployments/" },
    { priority = 40, function = "delete_deployment", method = "DELETE", full = null, prefix = "/v1/deployments/" },
    { priority = 45, function = "update_deployment", method = "PATCH", full = null, prefix = "/v1/deployments/" },
    { priority = 50, function = "get_deployment", method = "GET", full = "/v1/webhook-secret", prefix = null },
    { priority = 60, function = "deployment_ready", method = null, full = null, prefix = "/internal/deployment-ready/" },
    # Other methods on the deployment paths: the function answers 405.
    { priority = 70, function = "create_deployment", method = null, full = "/v1/deployments", prefix = null },
    { priority = 80, function = "get_deployment", method = null, full = null, prefix = "/v1/deployments/" },
  ]
}

resource "google_compute_global_address" "lb" {
  count = local.lb_count

  project = var.project_id
  name    = "${var.name_prefix}-lb"

  depends_on = [google_project_service.api]
}

resource "google_compute_region_network_endpoint_group" "fn" {
  for_each = local.lb_functions

  project               = var.project_id
  name                  = "${local.function_names[each.key]}-neg"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  # A gen2 function is a Cloud Run service of the same name.
  cloud_run {
    service = google_cloudfunctions2_function.fn[each.key].name
  }
}

resource "google_compute_backend_service" "fn" {
  for_each = local.lb_functions

  project               = var.project_id
  name                  = "${local.function_names[each.key]}-backend"
  load_balancing_scheme = "EXTERNAL_MANAGED"

  backend {
    group = google_compute_region_network_endpoint_group.fn[each.key].id
  }
}

resource "google_compute_url_map" "lb" {
  count = local.lb_count

  project         = var.project_id
  name            = "${var.name_prefix}-lb"
  default_service = google_compute_backend_service.fn["service"].id

  host_rule {
    hosts        = ["*"]
    path_matcher = "api"
  }

  path_matcher {
    name            = "api"
    default_service = google_compute_backend_service.fn["service"].id

    dynamic "route_rules" {
      for_each = local.lb_routes
      content {
        priority = route_rules.value.priority
        service  = google_compute_backend_service.fn[route_rules.value.function].id

        match_rules {
          full_path_match = route_rules.value.full
          prefix_match    = route_rules.value.prefix

          dynamic "header_matches" {
            for_each = route_rules.value.method == null ? [] : [route_rules.value.method]
            content {
              header_name = ":method"
              exact_match = header_matches.value
            }
          }
        }
      }
    }
  }
}

resource "google_compute_managed_ssl_certificate" "lb" {
  count = local.lb_count

  project = var.project_id
  # A new domain is a new certificate: the name carries the domain's hash
  # so that the new one can exist beside the old while the proxy moves.
  name = "${var.name_prefix}-lb-${substr(sha256(var.domain), 0, 8)}"

  managed {
    domains = [var.domain]
  }

  lifecycle {
    # The HTTPS proxy always needs a certificate: create the new one and
    # switch the proxy before the old one is deleted.
    create_before_destroy = true

    precondition {
      condition     = var.domain != ""
      error_message = "enable_load_balancer needs domain."
    }
  }
}

resource "google_compute_target_https_proxy" "lb" {
  count = local.lb_count

  project          = var.project_id
  name             = "${var.name_prefix}-lb"
  url_map          = google_compute_url_map.lb[0].id
  ssl_certificates = [google_compute_managed_ssl_certificate.lb[0].id]
}

resource "google_compute_global_forwarding_rule" "lb" {
  count = local.lb_count

  project               = var.project_id
  name                  = "${var.name_prefix}-lb"
  ip_address            = google_compute_global_address.lb[0].address
  port_range            = "443"
  target                = google_compute_target_https_proxy.lb[0].id
  load_balancing_scheme = "EXTERNAL_MANAGED"
}

# Plain HTTP on the same address answers with a redirect to HTTPS (301).
resource "google_compute_url_map" "lb_redirect" {
  count = local.lb_count

  project = var.project_id
  name    = "${var.name_prefix}-lb-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "lb_redirect" {
  count = local.lb_count

  project = var.project_id
  name    = "${var.name_prefix}-lb-redirect"
  url_map = google_compute_url_map.lb_redirect[0].id
}

resource "google_compute_global_forwarding_rule" "lb_redirect" {
  count = local.lb_count

  project               = var.project_id
  name                  = "${var.name_prefix}-lb-redirect"
  ip_address            = google_compute_global_address.lb[0].address
  port_range            = "80"
  target                = google_compute_target_http_proxy.lb_redirect[0].id
  load_balancing_scheme = "EXTERNAL_MANAGED"
}
