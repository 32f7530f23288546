output "bucket_names" {
  description = "Bucket name per purpose: landing, lake, mlflow, dagster."
  value       = { for purpose, bucket in local.data_buckets : purpose => bucket.name }
}

output "bucket_arns" {
  description = "Bucket ARN per purpose: landing, lake, mlflow, dagster."
  value       = { for purpose, bucket in local.data_buckets : purpose => bucket.arn }
}

output "access_logs_bucket" {
  description = "Bucket receiving S3 server access logs (s3/) and ALB access logs (alb/)."
  value       = aws_s3_bucket.access_logs.id
}
