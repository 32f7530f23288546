output "address" {
  description = "Host name of the instance (MLOPS_PG_HOST)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port (MLOPS_PG_PORT)."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Initial database (MLOPS_PG_DB)."
  value       = aws_db_instance.this.db_name
}

output "master_username" {
  description = "Master user name (MLOPS_PG_USER)."
  value       = aws_db_instance.this.username
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret RDS keeps the master credentials in (JSON keys username, password)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "security_group_id" {
  description = "Security group of the instance."
  value       = aws_security_group.this.id
}

output "instance_id" {
  description = "RDS instance identifier."
  value       = aws_db_instance.this.identifier
}
