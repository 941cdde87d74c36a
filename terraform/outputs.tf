output "function_urls" {
  description = "URL of every function (Cloud Run service URI), by function key."
  value       = { for k, f in google_cloudfunctions2_function.fn : k => f.service_config[0].uri }
}

output "function_entry_points" {
  description = "Entry point of every function, by function key."
  value       = { for k, f in local.functions : k => f.entry_point }
}

output "api_base_url" {
  description = "The one base URL of the whole API (every path of the contract): API Gateway, or the load balancer when enabled. Also PUBLIC_BASE_URL of the functions (inference containers call it back)."
  value       = local.public_base_url
}

output "inference_image" {
  description = "INFERENCE_IMAGE given to the functions: the worker image built from inference/, publicly readable."
  value       = local.inference_image
}

output "provision_task_url" {
  description = "PROVISION_TASK_URL given to the functions (deterministic Cloud Run URL of ProvisionTask)."
  value       = local.run_urls["provision_task"]
}

output "tasks_queue" {
  description = "Cloud Tasks queue path."
  value       = google_cloud_tasks_queue.provision.id
}

output "kms_key_uri" {
  description = "KMS_KEY_URI given to the functions."
  value       = local.function_env.KMS_KEY_URI
}

output "service_accounts" {
  description = "Service account emails, by role."
  value       = { for k, sa in google_service_account.sa : k => sa.email }
}

output "secrets" {
  description = "Secret Manager secret ids, by environment variable. Add a version with: gcloud secrets versions add ID --data-file=-"
  value       = local.secret_env
}

output "lb_ip_address" {
  description = "IP address to point the domain's A record at (load balancer only)."
  value       = var.enable_load_balancer ? google_compute_global_address.lb[0].address : null
}
