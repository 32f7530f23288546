output "names" {
  description = "Log group name per service."
  value       = { for key, group in aws_cloudwatch_log_group.this : key => group.name }
}

output "arns" {
  description = "Log group ARN per service."
  value       = { for key, group in aws_cloudwatch_log_group.this : key => group.arn }
}
