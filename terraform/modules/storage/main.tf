# Object storage. Four data buckets, each KMS-encrypted, versioned, private, TLS-only, access-logged and
# with a lifecycle; plus one bucket that receives the S3 server access logs and the ALB access logs.
#
#   landing  the landing zone and the archive of every delivered file  (MLOPS_S3_BUCKET, MLOPS_S3_PREFIX)
#   lake     DuckLake table data as Parquet                             (MLOPS_LAKE_DATA_PATH)
#   mlflow   MLflow artifacts: models, references                       (MLFLOW_ARTIFACTS_DESTINATION)
#   dagster  Dagster compute logs (stdout/stderr of every step)         (dagster.yaml compute_logs)
module "landing" {
  source = "./bucket"

  bucket_name       = "${var.name_prefix}-landing-${var.account_id}"
  purpose           = "landing zone and archive of delivered files"
  kms_key_arn       = var.kms_key_arn
  access_log_bucket = aws_s3_bucket.access_logs.id
  force_destroy     = var.force_destroy

  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  # Archived deliveries are read rarely once ingested: cheaper classes with age.
  transition_prefix = "${var.s3_prefix}archive/"
  transitions = [
    { days = 30, storage_class = "STANDARD_IA" },
    { days = 180, storage_class = "GLACIER_IR" },
  ]
}

module "lake" {
  source = "./bucket"

  bucket_name       = "${var.name_prefix}-lake-${var.account_id}"
  purpose           = "DuckLake Parquet data"
  kms_key_arn       = var.kms_key_arn
  access_log_bucket = aws_s3_bucket.access_logs.id
  force_destroy     = var.force_destroy

  # DuckLake never rewrites a file in place; old snapshots' files are removed by DuckLake's own cleanup,
  # so noncurrent versions only guard against mistakes.
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
}

module "mlflow" {
  source = "./bucket"

  bucket_name       = "${var.name_prefix}-mlflow-${var.account_id}"
  purpose           = "MLflow artifacts"
  kms_key_arn       = var.kms_key_arn
  access_log_bucket = aws_s3_bucket.access_logs.id
  force_destroy     = var.force_destroy

  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  transitions                        = [{ days = 90, storage_class = "STANDARD_IA" }]
}

module "dagster" {
  source = "./bucket"

  bucket_name       = "${var.name_prefix}-dagster-${var.account_id}"
  purpose           = "Dagster compute logs"
  kms_key_arn       = var.kms_key_arn
  access_log_bucket = aws_s3_bucket.access_logs.id
  force_destroy     = var.force_destroy

  noncurrent_version_expiration_days = 7
  expire_current_after_days          = var.compute_log_expiration_days
}

locals {
  data_buckets = {
    landing = module.landing
    lake    = module.lake
    mlflow  = module.mlflow
    dagster = module.dagster
  }
}

# ---------------------------------------------------------------------------------------------------
# Access-log bucket: target of S3 server access logging and of the ALB access logs
# ---------------------------------------------------------------------------------------------------
resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:This bucket is the access-log target; logging it into itself would log its own log deliveries in a loop.
  #checkov:skip=CKV_AWS_144:Audit logs stay in the region they describe; versioning and a one-year lifecycle protect them.
  #checkov:skip=CKV_AWS_145:S3 server access logs and ALB access logs can only be delivered to buckets encrypted with SSE-S3 (AES256), not SSE-KMS (AWS limitation).
  bucket        = "${var.name_prefix}-access-logs-${var.account_id}"
  force_destroy = var.force_destroy

  tags = { Purpose = "S3 server access logs and ALB access logs" }
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

resource "aws_s3_bucket_notification" "access_logs" {
  bucket      = aws_s3_bucket.access_logs.id
  eventbridge = true
}

# The regional Elastic Load Balancing account writes ALB access logs in regions opened before August 2022;
# newer regions use the log-delivery service principal. Both are allowed, each only under alb/.
data "aws_elb_service_account" "this" {}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.access_logs.arn,
      "${aws_s3_bucket.access_logs.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "S3ServerAccessLogDelivery"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/s3/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }

  statement {
    sid       = "AlbAccessLogDeliveryRegionalAccount"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/alb/AWSLogs/${var.account_id}/*"]
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.this.arn]
    }
  }

  statement {
    sid       = "AlbAccessLogDeliveryServicePrincipal"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/alb/AWSLogs/${var.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}
