# Customer-managed KMS keys, one per purpose, so a key policy only admits the service that needs it and
# one key can be disabled or audited without touching the others. Rotation is yearly and automatic.
locals {
  account_root = "arn:${var.partition}:iam::${var.account_id}:root"

  # Statement shared by every key: the account administers it through IAM policies.
  account_admin_statement = {
    Sid       = "AccountAdministersKeyThroughIam"
    Effect    = "Allow"
    Principal = { AWS = local.account_root }
    Action    = "kms:*"
    Resource  = "*"
  }

  service_statements = {
    s3 = []
    rds = []
    secrets = []
    ecr = []
    logs = [{
      Sid       = "CloudWatchLogsEncryptsThisAccountsLogGroups"
      Effect    = "Allow"
      Principal = { Service = "logs.${var.region}.amazonaws.com" }
      Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      Resource  = "*"
      Condition = {
        ArnLike = {
          "kms:EncryptionContext:aws:logs:arn" = "arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:*"
        }
      }
    }]
  }

  descriptions = {
    s3      = "S3 buckets: landing/archive, lake data, MLflow artifacts, Dagster compute logs"
    rds     = "RDS PostgreSQL storage, snapshots and Performance Insights"
    secrets = "Secrets Manager: database credentials"
    ecr     = "ECR repositories: container images"
    logs    = "CloudWatch Logs: ECS services, runs, VPC flow logs, WAF, ECS Exec"
  }
}

resource "aws_kms_key" "this" {
  for_each = local.descriptions

  description             = "${var.name_prefix} ${each.value}"
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_in_days
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = concat([local.account_admin_statement], local.service_statements[each.key])
  })
}

resource "aws_kms_alias" "this" {
  for_each = local.descriptions

  name          = "alias/${var.name_prefix}-${each.key}"
  target_key_id = aws_kms_key.this[each.key].key_id
}
