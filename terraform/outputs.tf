output "ecr_repository_urls" {
  description = "Where to push the images: dagster, code, bento."
  value       = module.ecr.repository_urls
}

output "bento_url" {
  description = "Prediction API load balancer (point the certificate's host name at it)."
  value       = "https://${module.alb.bento_dns_name}"
}

output "dagster_ui_url" {
  description = "Internal Dagster UI load balancer (reachable from the allowed operator networks)."
  value       = "https://${module.alb.dagster_dns_name}"
}

output "cluster_name" {
  description = "ECS cluster."
  value       = module.ecs.cluster_name
}

output "service_names" {
  description = "ECS services: webserver, daemon, code, bento."
  value       = module.ecs.service_names
}

output "bucket_names" {
  description = "S3 buckets: landing, lake, mlflow, dagster."
  value       = module.storage.bucket_names
}

output "access_logs_bucket" {
  description = "Bucket of S3 and ALB access logs."
  value       = module.storage.access_logs_bucket
}

output "database_endpoint" {
  description = "PostgreSQL host:port (private)."
  value       = "${module.database.address}:${module.database.port}"
}

output "database_secret_arn" {
  description = "Secrets Manager secret with the database credentials (rotated by RDS)."
  value       = module.secrets.database_secret_arn
}

output "log_groups" {
  description = "CloudWatch log groups per service, plus the VPC flow logs."
  value       = merge(module.logs.names, { flow_logs = module.network.flow_log_group })
}

output "run_network" {
  description = "Subnets and security group for one-off tasks (aws ecs run-task), the same run tasks use."
  value = {
    subnets         = module.network.private_subnet_ids
    security_groups = [module.ecs.daemon_security_group_id]
  }
}

output "task_families" {
  description = "Task definition families of the Dagster services: webserver, daemon, code (templates for one-off tasks)."
  value       = module.ecs.dagster_task_families
}
