output "database_secret_arn" {
  description = "The secret the database credentials come from."
  value       = var.database_secret_arn
}

output "database_env" {
  description = "ECS container `secrets` entries for MLOPS_PG_USER, MLOPS_PG_PASSWORD and PGPASSWORD."
  value       = local.database_env
}

output "rotation_schedule" {
  description = "Rotation schedule of the database secret."
  value       = aws_secretsmanager_secret_rotation.database.rotation_rules[0].schedule_expression
}
