output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ECS cluster ARN."
  value       = aws_ecs_cluster.this.arn
}

output "service_names" {
  description = "ECS service names: webserver, daemon, code, bento."
  value = {
    webserver = aws_ecs_service.webserver.name
    daemon    = aws_ecs_service.daemon.name
    code      = aws_ecs_service.code.name
    bento     = aws_ecs_service.bento.name
  }
}

output "dagster_task_security_group_ids" {
  description = "Security groups of the Dagster tasks that connect to PostgreSQL (run tasks share the daemon's)."
  value = [
    aws_security_group.webserver.id,
    aws_security_group.daemon.id,
    aws_security_group.code.id,
  ]
}

output "daemon_security_group_id" {
  description = "Security group of the daemon and of every run task."
  value       = aws_security_group.daemon.id
}

output "code_server_host" {
  description = "Private DNS name of the code location's gRPC server."
  value       = "code.${aws_service_discovery_private_dns_namespace.this.name}"
}

output "dagster_task_families" {
  description = "Task definition families of the Dagster services (use the code family for one-off tasks)."
  value       = { for key, td in aws_ecs_task_definition.dagster : key => td.family }
}
