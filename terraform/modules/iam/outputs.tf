output "dagster_execution_role_arn" {
  description = "Execution role of the Dagster services and run tasks."
  value       = aws_iam_role.dagster_execution.arn
}

output "bento_execution_role_arn" {
  description = "Execution role of the BentoML service."
  value       = aws_iam_role.bento_execution.arn
}

output "webserver_task_role_arn" {
  description = "Task role of the Dagster webserver."
  value       = aws_iam_role.webserver.arn
}

output "daemon_task_role_arn" {
  description = "Task role of the Dagster daemon (the run launcher)."
  value       = aws_iam_role.daemon.arn
}

output "code_task_role_arn" {
  description = "Task role of the code location's gRPC server."
  value       = aws_iam_role.code.arn
}

output "run_task_role_arn" {
  description = "Task role of every run task."
  value       = aws_iam_role.run.arn
}
