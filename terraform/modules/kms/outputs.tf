output "key_arns" {
  description = "Key ARN per purpose: s3, rds, secrets, ecr, logs."
  value       = { for purpose, key in aws_kms_key.this : purpose => key.arn }
}
